"""Named configs of this plugin: ``tasks/*.toml`` and ``attacks/*.toml`` beside this file.

The ``ssrbench.configs`` entry point names this package; ssrbench searches its folders after the
user's own (--config-dir) and before its built-in ones.
"""
