"""Tasks: the `Task` type, task folders on disk, and the registry that indexes them."""

from cligym_env.tasks.folder import TaskExistsError, load_task, write_task
from cligym_env.tasks.registry import Registry, UnknownTaskError
from cligym_env.tasks.task import CATEGORIES, Environment, Metadata, Task, TaskError, Tests

__all__ = ["CATEGORIES", "Environment", "Metadata", "Registry", "Task", "TaskError", "TaskExistsError", "Tests",
           "UnknownTaskError", "load_task", "write_task"]
