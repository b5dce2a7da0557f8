"""Paper methods as plugins, one package each (``plugins/<method>/``; docs/methods/<method>.md).

Importing this package imports every plugin subpackage, whose ``@register`` decorators make its
classes available to configs by name. The core never imports a plugin directly.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
