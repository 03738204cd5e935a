"""Tasks: the `Task` type, task folders on disk, and the registry that indexes them."""

from cligym_env.tasks.task import CATEGORIES, Environment, Metadata, Task, TaskError, Tests

__all__ = ["CATEGORIES", "Environment", "Metadata", "Task", "TaskError", "Tests"]
