"""planner's version: in the package's face (planner.__version__) and in every file it renders."""

VERSION = "0.1.0"
