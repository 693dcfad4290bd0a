/*
 * hex.h — hexadecimal digits, for the core's text forms (API keys, keyring file names, the
 * master key). Canonical forms are lower case; only the master key, which people type or paste,
 * also accepts upper case.
 */
#pragma once
#include "core/pure.h"

#include <cstddef>
#include <cstdint>

namespace vector_vault
{

/* Value of a lower-case hex digit, or -1. */
int HexDigit(char c);

/* Value of a hex digit of either case, or -1. */
int HexDigitAnyCase(char c);

/* Writes n bytes as 2n lower-case hex digits (no terminator). */
void EncodeHexLower(const uint8_t *p, size_t n, char *out);

} // namespace vector_vault
