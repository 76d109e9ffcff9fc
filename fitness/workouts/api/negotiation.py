from rest_framework.negotiation import BaseContentNegotiation


class FirstRendererNegotiation(BaseContentNegotiation):
    """For endpoints that answer a file (PNG, raw recording) themselves: never 406.

    Whatever the client accepts, errors are rendered by the view's first renderer (JSON);
    successful answers are plain Django responses with their own content type.
    """

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
