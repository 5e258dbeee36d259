"""Pretraining a class-conditional source GAN to adapt from: its config, state and loop."""
