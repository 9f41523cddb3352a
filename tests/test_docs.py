"""The documentation's commands match the code, so the docs cannot drift.

Every command in README.md, docs/*.md and configs/*/README.md that calls
``tools/*.py``, ``tools/*.sh``, ``python -m mmseg_autodeeplab...``, ``mim``
or ``make`` (fenced shell blocks and inline code) is checked against what
it calls: the script exists, each flag is one its parser accepts (the
parser is taken from the tool's own code at test time, so a flag added
there is known here at once), every ``configs/`` path exists, every make
target is in the Makefile, and every relative link points at a file. Fenced
commands are parsed in full by the tool's parser (values and choices too);
inline ones only for their flags. A bare inline flag (```--dynamic```) is
checked against the tool named last before it in the same section.
"""
import argparse
import contextlib
import copy
import glob
import importlib
import importlib.util
import io
import os.path as osp
import re
import shlex

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOCS = sorted(
    [osp.join(REPO, 'README.md')] + glob.glob(osp.join(REPO, 'docs', '*.md'))
    + glob.glob(osp.join(REPO, 'configs', '*', 'README.md')))
SHELL_LANGS = ('bash', 'shell', 'sh', 'console', '')
TOOL_RE = re.compile(r'(?:^|/)(tools/[\w/]+\.(?:py|sh))$')
FLAG_RE = re.compile(r'^--?[A-Za-z][\w-]*$')


# ----------------------------------------------------------- extraction ---
def _sections(text):
    """``(heading, lines)`` per Markdown section (fences kept whole)."""
    sections, heading, lines, fence = [], '', [], False
    for line in text.splitlines():
        if line.lstrip().startswith('```'):
            fence = not fence
        if not fence and line.startswith('#'):
            sections.append((heading, lines))
            heading, lines = line.strip('# '), []
        else:
            lines.append(line)
    sections.append((heading, lines))
    return sections


def _fences(lines):
    """``(language, body lines)`` of the fenced blocks in ``lines``."""
    blocks, lang, body = [], None, []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith('```'):
            if lang is None:
                lang, body = stripped[3:].strip(), []
            else:
                blocks.append((lang, body))
                lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def _shell_commands(body):
    """Token lists of a shell block: continuations joined, comments and
    ``$VAR`` of variables set in the block resolved."""
    env, commands = {}, []
    for line in '\n'.join(body).replace('\\\n', ' ').splitlines():
        line = re.sub(r'\$\{?(\w+)\}?',
                      lambda m: env.get(m.group(1), m.group(0)), line)
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:  # an unbalanced quote: not a command we check
            continue
        if len(tokens) == 1 and re.match(r'^\w+=', tokens[0]):
            name, value = tokens[0].split('=', 1)
            env[name] = value
        elif tokens:
            commands.append(tokens)
    return commands


#: marks a paragraph break among the inline spans
PARAGRAPH = '\x00'


def _inline_spans(lines):
    """Inline code spans outside fences, with :data:`PARAGRAPH` between
    paragraphs (a bare flag belongs to a tool of its own paragraph)."""
    text = re.sub(r'```.*?```', '', '\n'.join(lines), flags=re.S)
    spans = []
    for paragraph in re.split(r'\n\s*\n', text):
        spans += [s.replace('\n', ' ')
                  for s in re.findall(r'`([^`]+)`', paragraph)]
        spans.append(PARAGRAPH)
    return spans


def doc_commands():
    """``(doc, where, tokens, full)`` of every checkable command, and the
    bare inline flags as ``(doc, where, [tool, flag], False)``."""
    found = []
    for doc in DOCS:
        with open(doc, encoding='utf-8') as f:
            text = f.read()
        name = osp.relpath(doc, REPO)
        for heading, lines in _sections(text):
            where = f'{name} ({heading or "top"})'
            last_tool = None
            for lang, body in _fences(lines):
                if lang not in SHELL_LANGS:
                    continue
                for tokens in _shell_commands(body):
                    if _target(tokens):
                        found.append((name, where, tokens, True))
            for span in _inline_spans(lines):
                if span == PARAGRAPH:
                    last_tool = None
                    continue
                try:
                    tokens = shlex.split(span)
                except ValueError:
                    continue
                target = _target(tokens)
                if target:
                    found.append((name, where, tokens, False))
                    if target[0] == 'tool':
                        last_tool = target[1]
                elif (last_tool and len(tokens) == 1
                      and FLAG_RE.match(tokens[0].split('=')[0])):
                    found.append((name, where, [last_tool, tokens[0]],
                                  False))
    return found


def doc_written_files(doc):
    """Files a doc's own code blocks create (a block opening with
    ``# PATH``), which its commands may then use."""
    with open(doc, encoding='utf-8') as f:
        return set(re.findall(r'```\w*\n# (configs/\S+)\n', f.read()))


def _target(tokens):
    """What a command calls: ``('tool', path, args)``, ``('module', name,
    args)``, ``('mim', sub, args)``, ``('make', None, targets)`` or None."""
    if not tokens:
        return None
    if tokens[0] == 'make':
        return 'make', None, tokens[1:]
    if tokens[0] == 'mim' and len(tokens) > 1 and tokens[1] in ('train',
                                                                 'test'):
        return 'mim', tokens[1], tokens[2:]
    for k, tok in enumerate(tokens[:3]):
        m = TOOL_RE.search(tok)
        if m and (k == 0 or tokens[k - 1] in ('python', 'python3', 'bash')):
            return 'tool', m.group(1), tokens[k + 1:]
        if tok == '-m' and k + 1 < len(tokens) and tokens[k + 1].startswith(
                'mmseg_autodeeplab'):
            return 'module', tokens[k + 1], tokens[k + 2:]
    return None


# -------------------------------------------------------------- parsers ---
class _Captured(Exception):

    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def _capture(entry):
    """The ArgumentParser that ``entry([])`` builds, taken at the moment it
    would parse: nothing of the tool runs after that."""

    def stop(self, *args, **kwargs):
        raise _Captured(self)

    saved = (argparse.ArgumentParser.parse_args,
             argparse.ArgumentParser.parse_known_args)
    argparse.ArgumentParser.parse_args = stop
    argparse.ArgumentParser.parse_known_args = stop
    try:
        entry([])
    except _Captured as c:
        return c.parser
    finally:
        (argparse.ArgumentParser.parse_args,
         argparse.ArgumentParser.parse_known_args) = saved
    return None


def _module_entry(module):
    return getattr(module, 'parse_args', None) or module.main


_PARSERS = {}


def tool_parser(path):
    """The parser of ``tools/X.py`` (its ``cli`` module's, or its own), of
    the script a ``tools/X.sh`` hands its arguments to, or None."""
    if path in _PARSERS:
        return _PARSERS[path]
    with open(osp.join(REPO, path), encoding='utf-8') as f:
        source = f.read()
    if path.endswith('.sh'):  # e.g. dist_search.sh runs tools/search.py
        m = re.search(r'/(\w+\.py)"', source)
        parser = tool_parser(f'tools/{m.group(1)}') if m else None
    else:
        m = re.search(r'^from (mmseg_autodeeplab[\w.]*) import main',
                      source, re.M)
        if m:
            module = importlib.import_module(m.group(1))
        else:  # the tool's code is in the file itself
            spec = importlib.util.spec_from_file_location(
                'doc_tool_' + osp.basename(path)[:-3], osp.join(REPO, path))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        parser = _capture(_module_entry(module))
    _PARSERS[path] = parser
    return parser


def _mmseg_tool_parser(name):
    """mmseg's packaged tools/{train,test}.py parser (what mim runs)."""
    import mmseg
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', name)
    spec = importlib.util.spec_from_file_location(f'mmseg_tool_{name[:-3]}',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return _capture(lambda argv: module.parse_args())


def mim_flags(sub):
    """Flags ``mim train|test mmsegmentation`` accepts: mim's own plus
    those of mmseg's tool it forwards the rest to."""
    key = f'mim {sub}'
    if key not in _PARSERS:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # mim's pkg_resources warning
            command = importlib.import_module(f'mim.commands.{sub}').cli
        flags = {o for p in command.params for o in p.opts
                 if o.startswith('-')}
        flags |= set(_mmseg_tool_parser(f'{sub}.py')._option_string_actions)
        _PARSERS[key] = flags
    return _PARSERS[key]


def makefile_targets():
    with open(osp.join(REPO, 'Makefile'), encoding='utf-8') as f:
        return set(re.findall(r'^([\w.-]+):', f.read(), re.M))


# --------------------------------------------------------------- checks ---
def _args(tokens):
    """Arguments as a user types them: ``[--opt]`` brackets and ``...``
    dropped (a shown option or repetition is not a value)."""
    out = []
    for tok in tokens:
        if tok in ('...', '[...]'):
            continue
        out.append(tok.strip('[]') if tok.startswith('[')
                   or tok.endswith(']') and '[' not in tok else tok)
    return out


def _flags(args):
    return [a.split('=')[0] for a in args
            if FLAG_RE.match(a.split('=')[0]) and not re.match(r'^-\d', a)]


def _mmseg_tool(path):
    """mmseg's packaged copy of ``tools/...`` (docs mention mmseg's own
    tools), or None."""
    import mmseg
    found = osp.join(osp.dirname(mmseg.__file__), '.mim', path)
    return found if osp.isfile(found) else None


def _parse_error(parser, args):
    """The parser's one-line complaint about ``args``, or None: arity,
    required arguments and choices. Type functions are left out: some
    check that a file exists, and the docs show example paths."""
    parser = copy.deepcopy(parser)
    for action in parser._actions:
        if action.choices is None:
            action.type = None
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
        try:
            parser.parse_args(args)
        except SystemExit as e:
            if e.code:
                return err.getvalue().strip().splitlines()[-1] if \
                    err.getvalue().strip() else f'exit {e.code}'
    return None


def check_command(tokens, full, written=()):
    """Problems with one documented command (empty list: it fits);
    ``written``: config paths the doc itself creates."""
    kind, name, args = _target(tokens)
    args = _args(args)
    problems = [f'{a}: no such config' for a in args
                if a.startswith('configs/') and a not in written
                and not osp.exists(osp.join(REPO, a))]
    if kind == 'make':
        targets = makefile_targets()
        problems += [f'make {t}: no such target in the Makefile'
                     for t in args if not t.startswith('-') and '=' not in t
                     and t not in targets]
    elif kind == 'mim':
        known = mim_flags(name)
        problems += [f'mim {name}: unknown flag {f}' for f in _flags(args)
                     if f not in known]
    elif kind == 'module':
        if importlib.util.find_spec(name) is None:
            problems.append(f'{name}: no such module')
        else:  # its parse_args, else the parser its main builds
            parser = _capture(_module_entry(importlib.import_module(name)))
            if parser is None:
                problems.append(f'{name}: no argparse parser found')
            else:
                problems += [f'{name}: unknown flag {f}'
                             for f in _flags(args)
                             if f not in parser._option_string_actions]
    else:
        if not osp.isfile(osp.join(REPO, name)):
            mmseg_tool = _mmseg_tool(name)
            if mmseg_tool is None:
                return problems + [f'{name}: no such script']
            if name in ('tools/train.py', 'tools/test.py'):
                problems += [f"mmseg's {name}: unknown flag {f}"
                             for f in _flags(args) if f not in mim_flags(
                                 osp.basename(name)[:-3])]
            return problems
        parser = tool_parser(name)
        if parser is None:  # a shell script without flags is fine
            return problems + ([f'{name}: no argparse parser found']
                               if _flags(args) or not name.endswith('.sh')
                               else [])
        if name.endswith('.sh'):
            args = args[2:]  # CONFIG NUM_GPUS
        unknown = [f for f in _flags(args)
                   if f not in parser._option_string_actions]
        problems += [f'{name}: unknown flag {f}' for f in unknown]
        if full and not unknown and not name.endswith('.sh'):
            error = _parse_error(parser, args)
            if error:
                problems.append(f'{name}: {error}')
    return problems


def check_links(doc):
    """Relative Markdown links (and images) of ``doc`` that point nowhere."""
    with open(doc, encoding='utf-8') as f:
        text = re.sub(r'```.*?```', '', f.read(), flags=re.S)
    bad = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        path = target.split('#')[0]
        if not path or re.match(r'^[a-z]+:', path):
            continue
        if not osp.exists(osp.join(osp.dirname(doc), path)):
            bad.append(f'{osp.relpath(doc, REPO)}: link to {target}: '
                       'no such file')
    return bad


COMMANDS = doc_commands()


def test_the_docs_hold_commands_to_check():
    """The extraction finds the documented workflow (not a silent pass)."""
    called = {_target(t)[1] for _, _, t, _ in COMMANDS}
    assert {'tools/search.py', 'tools/decode_genotype.py', 'train', 'test',
            'tools/infer.py', 'tools/export_onnx.py'} <= called, called
    assert any(t[:2] == ['make', 'demo'] for _, _, t, _ in COMMANDS)


@pytest.mark.parametrize('doc', DOCS, ids=lambda d: osp.relpath(d, REPO))
def test_doc_commands_match_the_code(doc):
    name = osp.relpath(doc, REPO)
    written = doc_written_files(doc)
    problems = [f'{where}: `{shlex.join(tokens)}`: {p}'
                for d, where, tokens, full in COMMANDS if d == name
                for p in check_command(tokens, full, written)]
    problems += check_links(doc)
    assert not problems, '\n'.join(problems)


def test_a_renamed_flag_is_caught():
    """The check fails on what a rename leaves behind in the docs."""
    assert check_command(['python', 'tools/search.py', 'configs/x.py',
                          '--no-such-flag'], True) == [
        'configs/x.py: no such config',
        'tools/search.py: unknown flag --no-such-flag']
    assert check_command(['make', 'demo-all'], False) == [
        'make demo-all: no such target in the Makefile']
    assert check_command(['mim', 'test', 'mmsegmentation', 'X.py',
                          '--checkpoints', 'C'], False) == [
        'mim test: unknown flag --checkpoints']
    # a module's flags come from the parser its main builds
    rank = 'mmseg_autodeeplab.cli.supernet_rank'
    assert check_command(['python', '-m', rank, 'W', 'C', '--metric',
                          'aAcc'], False) == []
    assert check_command(['python', '-m', rank, 'W', '--metri'], False) == [
        f'{rank}: unknown flag --metri']
    # a value the parser refuses (full parse of a fenced command)
    assert check_command(['python', 'tools/decode_genotype.py', 'g.json',
                          '--dataset', 'kitti', '--out', 'x.py'], True)


def _measured_tables(lines):
    """Markdown tables among ``lines`` that hold measured figures (a body
    row with a decimal number)."""
    rows = [line for line in lines if line.startswith('|')]
    return [r for r in rows if not set(r) <= set('|-: ')
            and re.search(r'\d\.\d', r)]


@pytest.mark.parametrize(
    'doc', [d for d in DOCS if osp.dirname(d).endswith('docs')],
    ids=lambda d: osp.relpath(d, REPO))
def test_every_results_table_has_its_command(doc):
    """A docs/ section with a table of figures names the command that
    produced them (a checked tools/, mim or make command, or a timed one)."""
    name = osp.relpath(doc, REPO)
    with open(doc, encoding='utf-8') as f:
        sections = _sections(f.read())
    missing = []
    for heading, lines in sections:
        where = f'{name} ({heading or "top"})'
        has_command = any(w == where for _, w, _, _ in COMMANDS) or any(
            'time -v' in line for line in lines)
        if _measured_tables(lines) and not has_command:
            missing.append(where)
    assert not missing, 'tables of figures without their command: ' + \
        ', '.join(missing)
