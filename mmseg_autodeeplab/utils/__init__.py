from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ['atomic_write_bytes', 'atomic_write_json', 'atomic_write_text']
from .checks import ConfigError, check_dataset_cfg, sync_search_channels

__all__ += ['ConfigError', 'check_dataset_cfg', 'sync_search_channels']
from .resume import find_resumable_checkpoint

__all__ += ['find_resumable_checkpoint']
from .configs import find_project_config

__all__ += ['find_project_config']
from .errors import error_line, exit_with_error

__all__ += ['error_line', 'exit_with_error']
