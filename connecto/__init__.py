__version__ = "0.1.0"

# The public face: `from connecto import Volume, fragments, ...`. Each name is loaded on first use, so that `import
# connecto` stays fast; it changes nothing outside connecto (no environment variables, no log levels).
import sys as _sys, types as _types, importlib as _importlib

_PUBLIC = {
    'Config': 'config', 'load_config': 'config', 'InputError': 'config', 'WorkFailed': 'config',
    'Volume': 'volume', 'open_volume': 'volume', 'BlockGrid': 'blocks', 'run_blockwise': 'engine', 'RunReport': 'engine',
    'ingest': 'ingest', 'train': 'train', 'predict': 'predict', 'fragments': 'fragments', 'agglomerate': 'agglomerate',
    'evaluate': 'evaluate', 'automl': 'automl', 'run_pipeline': 'pipeline', 'demo': 'pipeline', 'STAGES': 'commands',
}
__all__ = ['__version__', *_PUBLIC]

class _Package(_types.ModuleType):
    "`connecto.fragments` is the stage function, also once the submodule of the same name is imported."
    def __setattr__(self, name, value):
        if name in _PUBLIC and isinstance(value, _types.ModuleType): return    # the import system binding a submodule
        super().__setattr__(name, value)

    def __getattr__(self, name):
        if name not in _PUBLIC: raise AttributeError(f"module 'connecto' has no attribute {name!r}")
        value = getattr(_importlib.import_module(f'connecto.{_PUBLIC[name]}'), name)
        super().__setattr__(name, value)
        return value

    def __dir__(self): return sorted({*super().__dir__(), *_PUBLIC})

_sys.modules[__name__].__class__ = _Package
