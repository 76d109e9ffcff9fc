from rest_framework import permissions


class IsOwner(permissions.BasePermission):
    """Object-level check: the object's ``user`` is the caller.

    Views also scope their querysets to the caller, so other users' objects are 404.
    """

    def has_object_permission(self, request, view, obj) -> bool:
        return getattr(obj, "user_id", None) == request.user.pk
