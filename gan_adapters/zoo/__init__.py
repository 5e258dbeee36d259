"""Generators written in this project: a BigGAN with class-conditional BN and its pretraining."""
