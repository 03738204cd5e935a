"""CLI-Gym: command-line repair tasks served as Gymnasium environments backed by Docker.

Importing the package registers `CLIGym-v0`.
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

if "CLIGym-v0" not in registry:
    register(id="CLIGym-v0", entry_point="cligym_env.env:CLIGymEnv")
