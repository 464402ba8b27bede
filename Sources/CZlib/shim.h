// zlib (gzopen/gzread/gzwrite) for the gzip IDX files datasets ship in.
#pragma once
#include <zlib.h>
