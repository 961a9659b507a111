"""routectl: podCIDR allocation and VPC routes for flannel alloc-backend clusters."""

__version__ = "0.1.0"
