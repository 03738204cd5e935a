"""Task formats of the ecosystem: Harbor (Terminal-Bench 2.0) folders both ways, Terminal-Bench 1.0 folders and the
CLI-Gym paper's dataset rows in, a Hugging Face `datasets` folder out. Imported tasks are ordinary `Task`s."""
