"""Training recipes: the supervised recipe of Noguchi & Harada, run folders, and GAN pretraining."""
