"""The device a measurement runs on: checked, and named for its record."""
import platform

import torch


def check_device(device):
    """``torch.device`` of a ``'cpu'``/``'cuda[:i]'`` string; one-line
    ValueError if it is not usable here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ('cpu', 'cuda'):
        raise ValueError(f"expected 'cpu' or 'cuda[:i]', got {device!r}")
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'{device!r}: CUDA is not available on this machine')
    return dev


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo``; else the platform's)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f
                        if line.lower().startswith('model name')), cpu)
    except OSError:
        pass
    return cpu


def gpu_model(device):
    """The GPU's name if ``device`` is a usable CUDA device, else None."""
    if str(device).startswith('cuda') and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return None


def device_name(device):
    """A latency table's ``device``: ``'cpu (CPU model)'``, ``'cuda (GPU
    model)'``."""
    device = torch.device(device)
    return f'{device.type} ({gpu_model(device) or cpu_model()})'
