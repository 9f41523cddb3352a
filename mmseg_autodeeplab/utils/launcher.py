"""A run's layout under each launcher mmengine knows (``--launcher
none|pytorch|slurm|mpi``), and the main process's decisions for the run.

The variables that give a rank depend on the launcher: torchrun sets
``RANK``, srun ``SLURM_PROCID``, mpirun ``OMPI_COMM_WORLD_RANK``; mmengine
copies them into ``RANK`` only inside ``init_dist``. They are read once, to
join the process group; every "rank 0 only" decision is taken after that,
by mmengine's ``is_main_process`` (without a launcher this process is rank
0, whatever a stray ``RANK`` in the environment says). Standard library at
import: tools read it before importing torch.
"""
import os
import shutil
import subprocess

#: variables each launcher must set (what mmengine's ``init_dist`` reads)
REQUIRED = {
    'pytorch': ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
    'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
    'mpi': ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
            'OMPI_COMM_WORLD_LOCAL_RANK', 'MASTER_ADDR'),
}
#: who sets them, for the message
STARTED_BY = dict(pytorch='torchrun (tools/dist_search.sh)', slurm='srun',
                  mpi='mpirun (Open MPI), plus MASTER_ADDR')
#: the launcher's variable holding the global rank
RANK_KEY = dict(pytorch='RANK', slurm='SLURM_PROCID',
                mpi='OMPI_COMM_WORLD_RANK')
LAUNCHERS = ('none', ) + tuple(REQUIRED)
#: seconds ``scontrol show hostnames`` may take
SCONTROL_TIMEOUT_S = 30


class LauncherError(ValueError):
    """The launcher's environment is incomplete (one-line message)."""


def _int(key, env, low=0):
    value = env.get(key, '').strip()
    if not value.isdigit() or int(value) < low:
        raise LauncherError(f'{key}={env.get(key)!r}: expected an integer '
                            f'>= {low}')
    return int(value)


def _first_host(nodelist, env):
    """The first host of a Slurm node list (``n1,n2``, ``n[3-5]``)."""
    if '[' not in nodelist:
        return nodelist.split(',')[0]
    if shutil.which('scontrol'):
        try:  # a slurmctld that does not answer must not hang the start
            out = subprocess.run(['scontrol', 'show', 'hostnames', nodelist],
                                 capture_output=True, text=True,
                                 timeout=SCONTROL_TIMEOUT_S)
            if out.returncode == 0 and out.stdout.split():
                return out.stdout.split()[0]
        except subprocess.TimeoutExpired:
            pass
    raise LauncherError(f'--launcher slurm: cannot expand SLURM_NODELIST='
                        f'{nodelist!r} (scontrol missing, failed or silent '
                        f'for {SCONTROL_TIMEOUT_S} s); set MASTER_ADDR')


def launcher_env(launcher, environ=None):
    """The run's layout from the launcher's variables.

    Args:
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        environ (Mapping, optional): default ``os.environ``.

    Returns:
        dict: ``rank``, ``world_size``, ``local_rank``, and for a launcher
        ``master_addr`` and ``master_port`` (torch's ``env://``
        rendezvous).

    Raises:
        LauncherError: a variable is missing or not a number (one line
            naming every missing one).
    """
    env = os.environ if environ is None else environ
    if launcher == 'none':
        return dict(rank=0, world_size=1, local_rank=0)
    if launcher not in REQUIRED:
        raise LauncherError(f'--launcher {launcher!r}: expected one of '
                            f'{", ".join(LAUNCHERS)}')
    missing = [k for k in REQUIRED[launcher] if not env.get(k)]
    if missing:
        raise LauncherError(
            f'--launcher {launcher}: {", ".join(missing)} '
            f'{"is" if len(missing) == 1 else "are"} not set (set by '
            f'{STARTED_BY[launcher]}); start the tool with that launcher or '
            'pass --launcher none')
    if launcher == 'pytorch':
        layout = dict(rank=_int('RANK', env),
                      world_size=_int('WORLD_SIZE', env, 1),
                      local_rank=_int('LOCAL_RANK', env)
                      if env.get('LOCAL_RANK') else 0)
    elif launcher == 'slurm':
        layout = dict(rank=_int('SLURM_PROCID', env),
                      world_size=_int('SLURM_NTASKS', env, 1),
                      local_rank=_int('SLURM_LOCALID', env)
                      if env.get('SLURM_LOCALID') else 0)
    else:
        layout = dict(rank=_int('OMPI_COMM_WORLD_RANK', env),
                      world_size=_int('OMPI_COMM_WORLD_SIZE', env, 1),
                      local_rank=_int('OMPI_COMM_WORLD_LOCAL_RANK', env))
    if layout['rank'] >= layout['world_size']:
        raise LauncherError(
            f'--launcher {launcher}: rank {layout["rank"]} (from '
            f'{RANK_KEY[launcher]}) is not below the world size '
            f'{layout["world_size"]}')
    layout['master_addr'] = env.get('MASTER_ADDR') or _first_host(
        env['SLURM_NODELIST'], env)
    layout['master_port'] = _int('MASTER_PORT', env, 1) \
        if env.get('MASTER_PORT') else 29500  # mmengine's default
    return layout


def main_decides(work, what):
    """Run ``work()`` on the main process alone and give every rank its
    outcome in one broadcast each of them reaches (a rank deciding alone
    could skip a collective the others wait in).

    Raises:
        ConfigError: on every rank, the same line, when ``work`` failed (an
            ``OSError``'s named by ``what``); on the main process a failure
            that is neither that nor a ``ValueError`` (a bug) is re-raised.
    """
    from mmengine.dist import broadcast_object_list, is_main_process

    from .checks import ConfigError
    from .errors import error_line
    failure, line = None, [None]
    if is_main_process():
        try:
            work()
        except Exception as e:  # any failure: the others must hear of it
            failure = e
            line[0] = error_line(e) if isinstance(e, ValueError) else \
                f'{what}: {error_line(e)}'
    broadcast_object_list(line, src=0)  # no-op without a process group
    if failure is not None and not isinstance(failure, (ValueError, OSError)):
        raise failure
    if line[0] is not None:
        raise ConfigError(line[0])
