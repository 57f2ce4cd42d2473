#ifndef CMINIGPT_KERNELS_H
#define CMINIGPT_KERNELS_H
#include <stdint.h>
#include "mgk_dispatch.h"
#include "mgk_fp32.h"
#include "mgk_int8.h"
#include "mgk_kv.h"
#endif
