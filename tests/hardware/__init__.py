"""Tests of planner.hardware; fake_pynvml.py is the NVML stand-in other test folders may import too."""
