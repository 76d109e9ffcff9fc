from rest_framework import serializers


class ExerciseStatsSerializer(serializers.Serializer):
    exercise = serializers.CharField()
    total_reps = serializers.IntegerField()
    sets = serializers.IntegerField()
    sessions = serializers.IntegerField()
    best_set_reps = serializers.IntegerField()
    last_performed_at = serializers.DateTimeField()
