"""ssrbench: can a self-supervised reverse attack undo an adversarial attack?"""

__version__ = "0.1.0"
