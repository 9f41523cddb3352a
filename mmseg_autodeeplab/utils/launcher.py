"""Which process of a run this is, under each launcher mmengine knows
(``--launcher none|pytorch|slurm|mpi``).

Why one place: the decisions taken before the process group exists (the
work_dir's lock, the ``--overwrite`` deletion) and those taken after it (the
hooks that write files) must agree on which process is rank 0. The variable
that says so depends on the launcher: torchrun sets ``RANK``, srun
``SLURM_PROCID``, mpirun ``OMPI_COMM_WORLD_RANK``; mmengine copies them into
``RANK`` only inside ``init_dist``. Without a launcher this process is rank
0 whatever a stray ``RANK`` in the environment says. Standard library only:
tools read it before importing torch.
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
        out = subprocess.run(['scontrol', 'show', 'hostnames', nodelist],
                             capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.split():
            return out.stdout.split()[0]
    raise LauncherError(f'--launcher slurm: cannot expand SLURM_NODELIST='
                        f'{nodelist!r} without scontrol; set MASTER_ADDR')


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


def global_rank(launcher='none'):
    """This process's rank in its run: the process group's once it is
    initialised, before that the launcher's variable (``'none'``: 0)."""
    import sys
    dist = sys.modules.get('torch.distributed')  # not imported: no group
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return launcher_env(launcher)['rank']


def is_main(launcher='none'):
    """Whether this process takes the run's "rank 0 only" decisions: the
    work_dir's lock, the ``--overwrite`` deletion, the files hooks write."""
    return global_rank(launcher) == 0
