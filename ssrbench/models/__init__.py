"""Shared-backbone models: a timm backbone, a classifier head and the task's heads."""
