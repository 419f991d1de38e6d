"""The exception for an argument of the wrong dtype."""


class DTypeError(ValueError, TypeError):
    """An array argument has a dtype pyonebit does not take (integer ``w``,
    ``x`` or ``scales``, a float64 ``bias``, an ``out`` of another dtype ...).

    It subclasses both :class:`ValueError` and :class:`TypeError` (as NumPy's
    ``AxisError`` subclasses ``ValueError`` and ``IndexError``): MLX raises
    ``ValueError`` for these, pyonebit used to raise ``TypeError``, so code
    written for either catches it.
    """

    __module__ = "pyonebit"
