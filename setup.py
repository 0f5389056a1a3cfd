"""Build the optional compiled codec and ring cores (``ttxt_mp._ccodec``); the metadata
is in pyproject.

``optional=True``: a machine without a C compiler or Python headers still installs the
package, which then runs the pure-Python codec (``ttxt_mp.codec_c.IMPLEMENTATION``)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ttxt_mp._ccodec",
            ["ttxt_mp/_ccodec.c", "ttxt_mp/_cring.c", "ttxt_mp/_cbatch.c"],
            depends=["ttxt_mp/_ccodec.h"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        ),
        # the order book's hot part (ttxt_mp.orderbook; optional the same way)
        Extension("ttxt_mp._cbook", ["ttxt_mp/_cbook.c"], optional=True,
                  extra_compile_args=["-O2", "-Wall", "-Wextra"]),
    ]
)
