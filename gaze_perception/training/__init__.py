"""Training and evaluation commands (`gaze-perception train|eval TASK`); torch loads lazily."""
