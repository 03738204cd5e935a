"""The task generator: gold environments from real projects, inversion operators, validation, packaging."""
