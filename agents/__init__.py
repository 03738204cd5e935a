"""Agents for `CLIGym-v0`: policies, lock-step rollouts (local or Ray), evaluation, curation, SFT export, RL adapters.

`trajectory` (the one record type) - `policy` (the batched protocol) - `prompt` (the conversation format) -
`baselines` / `llm_policy` / `policies` (oracle, noop, random, vllm, openai) - `episode` / `rollout` /
`ray_rollout` - `evaluate` (pass@k) - `curate` - `sft` - `cli` (`register(app)` adds the commands) -
`trl_env` (TRL's GRPOTrainer `environment_factory`) - `skyrl_env` (a SkyRL-Gym `BaseTextEnv`, the `skyrl` extra).
"""
