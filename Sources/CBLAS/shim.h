// OpenBLAS (cblas_*, openblas_set_num_threads) and LAPACKE (LAPACKE_dsyevd).
#pragma once
#include <cblas.h>
#include <lapacke.h>
