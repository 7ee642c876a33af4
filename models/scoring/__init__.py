"""The scoring stage: the champion's predictions for processed trips."""
