"""foedus.infra: what every layer shares and none owns: the errors users see
(``errors``), the project's paths and settings (``config``), atomic writes, checksums and
file locks (``atomic``), the kill points of the fault tests (``faults``), the cores to use
(``parallel``), how memory is asked for and given back (``memory``) and the version
(``version``). It imports nothing else of foedus."""
