"""CLI-Gym: command-line repair tasks served as Gymnasium environments backed by Docker.

Importing the package registers `CLIGym-v0`: nondeterministic (a container's processes and timings are not
seeded), with no step limit of Gymnasium's own; the env's `max_steps` (or `gym.make(max_episode_steps=N)`,
through `GradeAtStepLimit`) ends the episode graded.
"""

from gymnasium.envs.registration import WrapperSpec, register, registry

__version__ = "0.1.0"

if "CLIGym-v0" not in registry:
    register(id="CLIGym-v0", entry_point="cligym_env.env:CLIGymEnv", nondeterministic=True,
             additional_wrappers=(WrapperSpec("GradeAtStepLimit", "cligym_env.settings:GradeAtStepLimit", {}),))
