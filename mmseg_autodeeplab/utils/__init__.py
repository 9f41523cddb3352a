from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from .checks import ConfigError, check_dataset_cfg, sync_search_channels
from .configs import find_project_config
from .errors import error_line, exit_with_error
from .resume import find_resumable_checkpoint

__all__ = [
    'atomic_write_bytes', 'atomic_write_json', 'atomic_write_text',
    'ConfigError', 'check_dataset_cfg', 'sync_search_channels',
    'find_project_config', 'error_line', 'exit_with_error',
    'find_resumable_checkpoint'
]
