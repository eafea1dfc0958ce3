"""Datasets as pixel tensors in [0, 1] (``DATASETS``; CIFAR-10 built in), read without unpickling code."""
