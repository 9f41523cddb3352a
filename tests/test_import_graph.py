"""The package has no import cycle, counting imports inside functions too
(a lazy import hides a cycle from Python, not from a reader), and the
search engine does not load the cost-table builder."""
import ast
import os
import os.path as osp
import subprocess
import sys

PACKAGE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                   'mmseg_autodeeplab')


def _modules(root=PACKAGE):
    """``{dotted name: path}`` of the package's modules (``.mim`` is a
    copy of configs and tools, not code of the package)."""
    mods = {}
    base = osp.dirname(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ('.mim', '__pycache__')]
        for name in files:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                dotted = osp.relpath(path, base)[:-3].replace(os.sep, '.')
                mods[dotted.removesuffix('.__init__')] = path
    return mods


def _nodes(tree, lazy):
    """The nodes of ``tree``; without ``lazy``, none inside a function
    (what importing the module runs)."""
    if lazy:
        yield from ast.walk(tree)
        return
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(child for child in ast.iter_child_nodes(node)
                    if not isinstance(child, (ast.FunctionDef,
                                              ast.AsyncFunctionDef,
                                              ast.Lambda)))


def import_graph(mods, lazy=True):
    """``{module: set of package modules it imports}``: anywhere, or only
    at import time (not ``lazy``)."""
    graph = {}
    for name, path in mods.items():
        pkg = name if path.endswith('__init__.py') else name.rpartition(
            '.')[0]
        deps = set()
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
        for node in _nodes(tree, lazy):
            if isinstance(node, ast.ImportFrom):
                parts = pkg.split('.')
                if node.level:
                    parts = parts[:len(parts) - node.level + 1]
                    target = '.'.join(parts + [node.module] * bool(
                        node.module))
                else:
                    target = node.module or ''
                names = [target] + [f'{target}.{a.name}' for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            deps.update(n for n in names if n in mods and n != name)
        graph[name] = deps
    return graph


def find_cycle(graph):
    """One cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 'open':
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        state[node] = 'done'
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_package_has_no_import_cycle():
    mods = _modules()
    assert 'mmseg_autodeeplab.search_space.genotype' in mods
    assert find_cycle(import_graph(mods)) is None


def test_a_lazy_import_cycle_is_found(tmp_path):
    """The check itself: a cycle closed by an import inside a function."""
    pkg = tmp_path / 'pkg'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'a.py').write_text('from .b import f\n')
    (pkg / 'b.py').write_text('def f():\n    from . import a\n    return a\n')
    (pkg / 'c.py').write_text('import pkg.a\n')
    graph = import_graph(_modules(str(pkg)))
    assert graph['pkg.c'] == {'pkg.a'}
    assert find_cycle(graph) in (['pkg.a', 'pkg.b', 'pkg.a'],
                                 ['pkg.b', 'pkg.a', 'pkg.b'])


BUILDER = 'mmseg_autodeeplab.cost_tables'


def reached(graph, start):
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_engine_does_not_import_the_builder():
    """The loop's modules reach the table builder (and through it the
    counters and benchmark helpers) only by a call when a table is
    missing, never at import time."""
    mods = _modules()
    graph = import_graph(mods, lazy=False)
    engine = [m for m in mods if m.startswith('mmseg_autodeeplab.engine')]
    assert 'mmseg_autodeeplab.engine.search_loop' in engine
    for module in engine:
        assert BUILDER not in reached(graph, module), module
    # the check itself: the CLI does import it
    assert BUILDER in reached(graph, 'mmseg_autodeeplab.cli.build_cost_table')


def test_importing_the_engine_loads_no_builder():
    """The same, as Python sees it: the whole package's registration (what
    ``custom_imports`` and tools/search.py load) leaves the builder and
    the benchmark helpers unloaded."""
    code = ('import sys, mmseg_autodeeplab.engine; print(" ".join(sorted('
            'm for m in sys.modules if m.startswith("mmseg_autodeeplab"))))')
    root = osp.dirname(PACKAGE)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get(
        'PYTHONPATH', ''))
    loaded = subprocess.run([sys.executable, '-c', code], env=env, cwd=root,
                            capture_output=True, text=True,
                            check=True).stdout.split()
    assert 'mmseg_autodeeplab.engine.search_loop' in loaded
    assert BUILDER not in loaded
    assert 'mmseg_autodeeplab.analysis' not in loaded


def private_imports(paths):
    """``(path, module, name)`` of every ``from M import _name`` (one
    leading underscore: a module's private name) where ``M`` is ours: a
    relative import, the package, or one of ``paths`` (a tool)."""
    ours = {osp.basename(p)[:-3] for p in paths}
    found = []
    for path in paths:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
        found += [(path, node.module, a.name) for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and (
                      node.level or node.module.split('.')[0] in ours
                      or node.module.startswith('mmseg_autodeeplab'))
                  for a in node.names
                  if a.name.startswith('_') and not a.name.startswith('__')]
    return found


def test_no_private_name_is_imported_across_modules(tmp_path):
    tools = osp.join(osp.dirname(PACKAGE), 'tools')
    paths = list(_modules().values()) + [
        osp.join(folder, name) for folder, _, names in os.walk(tools)
        for name in names if name.endswith('.py')]
    assert private_imports(paths) == []
    # the check itself
    (tmp_path / 'm.py').write_text('from .steps import _steps, public\n'
                                   'from torch.nn import _private\n')
    assert private_imports([str(tmp_path / 'm.py')]) == [
        (str(tmp_path / 'm.py'), 'steps', '_steps')]
