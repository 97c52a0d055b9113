"""Hardware: what a machine has, probed (NVML, psutil, sysfs) or described (--gpu, --ram, --hardware)."""
