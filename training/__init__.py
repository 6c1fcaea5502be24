"""Training: simulated thin-film data, augmentation and fitting of the classifier the agent loads."""
