/* test_util.h — small helpers shared by the core unit tests. */
#pragma once
#include <cstdint>
#include <string>
#include <vector>

/* Decodes a hex string (no separators) into bytes. */
inline std::vector<uint8_t>
Unhex(const std::string &hex)
{
	std::vector<uint8_t> out;
	for (size_t i = 0; i + 1 < hex.size(); i += 2)
		out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
	return out;
}

/* Encodes bytes as lower-case hex. */
inline std::string
Hex(const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (size_t i = 0; i < n; i++)
	{
		s.push_back(d[p[i] >> 4]);
		s.push_back(d[p[i] & 15]);
	}
	return s;
}
