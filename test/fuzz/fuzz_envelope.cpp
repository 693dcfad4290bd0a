/*
 * fuzz_envelope.cpp — libFuzzer target for the value envelope (core/envelope.h): the bytes of
 * every stored evector / etext / ejsonb / ehalfvec / esparsevec, which an attacker with file access
 * (or a binary-coercible cast) can replace at will.
 *
 * Each input is used twice.
 *  1. As an envelope: DecodeEnvelopeHeader and OpenEnvelope (with a fixed key) never crash, agree
 *     with an independent reading of the header layout, and write no more than payload_len
 *     plaintext bytes; OpenEnvelope only succeeds on an envelope whose header decodes.
 *  2. As seal parameters (kind, flags, key version, vault id, payload): SealEnvelope succeeds
 *     exactly when the header is valid by the documented rules; then OpenEnvelope returns the
 *     payload, the decoded header matches, and flipping any one byte, truncating, extending,
 *     or opening under another key fails.
 */
#include "core/aead.h"
#include "core/envelope.h"
#include "fuzz_util.h"

#include <cstdint>
#include <cstring>
#include <vector>

using namespace vector_vault;
using namespace vector_vault::fuzz;

namespace
{

const uint8_t kFuzzKey[kKeyBytes] = {
	0x76, 0x76, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x65, 0x6e, 0x76, 0x65, 0x6c, 0x6f, 0x70, 0x65,
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};

/* The documented validity rules of a header, written independently of envelope.cpp. */
bool
HeaderIsValid(uint8_t kind, uint8_t flags, uint32_t key_version, uint64_t vault_id,
			  uint32_t payload_len)
{
	/* kinds: 1 evector, 2 etext, 3 ejsonb, 4 ehalfvec, 5 esparsevec (only evector's length is
	 * constrained by the header; the others' payloads are checked after decryption) */
	if (kind < 1 || kind > 5 || flags != 0 || key_version == 0 || vault_id == 0)
		return false;
	if (payload_len > kMaxEnvelopePayload)
		return false;
	if (kind == 1)
		return payload_len % 4 == 0 && payload_len / 4 >= 1 && payload_len / 4 <= kMaxVectorDims;
	return true;
}

/* Property 1: untrusted bytes as an envelope. */
void
FuzzDecodeAndOpen(const uint8_t *data, size_t size)
{
	std::vector<uint8_t> in(data, data + size);
	EnvelopeHeader h;
	Status s = DecodeEnvelopeHeader(in.data(), in.size(), &h);

	bool expect_ok = false;
	if (size >= kEnvelopeOverhead && in[0] == kEnvelopeFormat && in[3] == 0)
	{
		uint32_t len = GetU32(in.data() + 16);
		expect_ok =
			HeaderIsValid(in[1], in[2], GetU32(in.data() + 4), GetU64(in.data() + 8), len) &&
			EnvelopeSize(len) == size;
	}
	Check(s.ok() == expect_ok);
	if (!s.ok())
	{
		Check(s.code() == Code::kCorrupt && s.message()[0] != '\0');
		/* Opening what does not decode fails before writing a single plaintext byte. */
		std::vector<uint8_t> none(1, 0xA5);
		Check(!OpenEnvelope(in.data(), in.size(), kFuzzKey, none.data()).ok());
		Check(none[0] == 0xA5);
		return;
	}
	Check(static_cast<uint8_t>(h.kind) == in[1] && h.flags == 0);
	Check(h.key_version == GetU32(in.data() + 4) && h.vault_id == GetU64(in.data() + 8));
	Check(EnvelopeSize(h.payload_len) == size);

	/* Exactly payload_len bytes of room: ASan reports any write beyond. */
	std::vector<uint8_t> pt(h.payload_len);
	Status o = OpenEnvelope(in.data(), in.size(), kFuzzKey, pt.data());
	Check(o.ok() || o.code() == Code::kCorrupt);
}

/* Property 2: seal what the input describes, then check open and tamper detection. */
void
FuzzSealOpen(const uint8_t *data, size_t size)
{
	if (size < 14)
		return;
	uint8_t kind = data[0] & 7; /* 0, 6 and 7 are unknown kinds */
	/* Mostly zero flags, so most seals are valid; sometimes anything. */
	uint8_t flags = (data[1] & 0xF0) == 0xF0 ? data[1] : 0;
	uint32_t key_version = GetU32(data + 2) & ((data[1] & 1) ? 0xFFFFFFFFu : 0xFu);
	uint64_t vault_id = GetU64(data + 6);
	const uint8_t *payload = data + 14;
	uint32_t payload_len = static_cast<uint32_t>(size - 14);

	EnvelopeHeader h;
	h.kind = static_cast<ValueKind>(kind);
	h.flags = flags;
	h.key_version = key_version;
	h.vault_id = vault_id;
	h.payload_len = payload_len;
	std::vector<uint8_t> env(EnvelopeSize(payload_len));
	Status s = SealEnvelope(h, kFuzzKey, payload, env.data());
	Check(s.ok() == HeaderIsValid(kind, flags, key_version, vault_id, payload_len));
	if (!s.ok())
		return;

	EnvelopeHeader d;
	Check(DecodeEnvelopeHeader(env.data(), env.size(), &d).ok());
	Check(d.kind == h.kind && d.flags == 0 && d.key_version == key_version &&
		  d.vault_id == vault_id && d.payload_len == payload_len);
	std::vector<uint8_t> pt(payload_len);
	Check(OpenEnvelope(env.data(), env.size(), kFuzzKey, pt.data()).ok());
	Check(payload_len == 0 || memcmp(pt.data(), payload, payload_len) == 0);

	/* Any single flipped byte is an error: every byte up to 512, then a spread of positions. */
	uint8_t mask = data[size - 1] != 0 ? data[size - 1] : 0x01;
	size_t step = env.size() <= 512 ? 1 : env.size() / 509;
	std::vector<uint8_t> bad = env;
	for (size_t i = 0; i < env.size(); i += step)
	{
		bad[i] ^= mask;
		Check(!OpenEnvelope(bad.data(), bad.size(), kFuzzKey, pt.data()).ok());
		bad[i] = env[i];
	}
	bad[env.size() - 1] ^= mask;
	Check(!OpenEnvelope(bad.data(), bad.size(), kFuzzKey, pt.data()).ok());

	/* Truncated by one byte, or one byte longer: an error, never a partial value. */
	Check(!OpenEnvelope(env.data(), env.size() - 1, kFuzzKey, pt.data()).ok());
	std::vector<uint8_t> longer = env;
	longer.push_back(0);
	Check(!OpenEnvelope(longer.data(), longer.size(), kFuzzKey, pt.data()).ok());

	/* Another key: authentication fails. */
	uint8_t other[kKeyBytes];
	memcpy(other, kFuzzKey, kKeyBytes);
	other[data[2] % kKeyBytes] ^= 0x80;
	Status o = OpenEnvelope(env.data(), env.size(), other, pt.data());
	Check(!o.ok() && o.code() == Code::kCorrupt);
}

} // namespace

/* Runs both properties on every input. */
extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzDecodeAndOpen(data, size);
	FuzzSealOpen(data, size);
	return 0;
}
