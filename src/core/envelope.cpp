/* envelope.cpp — strict encoding and decoding of the value envelope (see envelope.h). */
#include "core/envelope.h"

namespace vector_vault
{

namespace
{

/* Writes the 20-byte header. */
void
EncodeHeader(const EnvelopeHeader &h, uint8_t *out)
{
	out[0] = kEnvelopeFormat;
	out[1] = static_cast<uint8_t>(h.kind);
	out[2] = h.flags;
	out[3] = 0;
	PutU32(out + 4, h.key_version);
	PutU64(out + 8, h.vault_id);
	PutU32(out + 16, h.payload_len);
}

/* Checks the fields of a header that are independent of the buffer size. */
Status
ValidateHeader(const EnvelopeHeader &h)
{
	if (h.kind != ValueKind::kVector && h.kind != ValueKind::kText && h.kind != ValueKind::kJson &&
		h.kind != ValueKind::kHalfVector && h.kind != ValueKind::kSparseVector)
		return Status::Error(Code::kCorrupt, "unknown encrypted value kind %u",
							 static_cast<unsigned>(h.kind));
	if (h.flags != 0)
		return Status::Error(Code::kCorrupt, "unknown encrypted value flags 0x%02x", h.flags);
	if (h.vault_id == 0)
		return Status::Error(Code::kCorrupt, "encrypted value names no vault");
	if (h.key_version == 0)
		return Status::Error(Code::kCorrupt, "encrypted value names key version 0");
	if (h.payload_len > kMaxEnvelopePayload)
		return Status::Error(Code::kCorrupt, "encrypted value is too large");
	if (h.kind == ValueKind::kVector)
	{
		if (h.payload_len % sizeof(float) != 0)
			return Status::Error(Code::kCorrupt, "encrypted vector length is not a whole number of "
												 "floats");
		uint32_t dims = h.payload_len / sizeof(float);
		if (dims < 1 || dims > kMaxVectorDims)
			return Status::Error(Code::kCorrupt, "encrypted vector has %u dimensions", dims);
	}
	return Status::Ok();
}

} // namespace

/* Validates and decodes the header of an envelope of exactly size bytes. */
Status
DecodeEnvelopeHeader(const uint8_t *data, size_t size, EnvelopeHeader *out)
{
	if (size < kEnvelopeOverhead)
		return Status::Error(Code::kCorrupt, "encrypted value is truncated (%zu bytes)", size);
	if (data[0] != kEnvelopeFormat)
		return Status::Error(Code::kCorrupt, "unsupported encrypted value format %u", data[0]);
	if (data[3] != 0)
		return Status::Error(Code::kCorrupt, "reserved byte of encrypted value is not zero");
	EnvelopeHeader h;
	h.kind = static_cast<ValueKind>(data[1]);
	h.flags = data[2];
	h.key_version = GetU32(data + 4);
	h.vault_id = GetU64(data + 8);
	h.payload_len = GetU32(data + 16);
	VV_RETURN_IF_ERROR(ValidateHeader(h));
	if (EnvelopeSize(h.payload_len) != size)
		return Status::Error(Code::kCorrupt,
							 "encrypted value length does not match its header (%zu bytes, header "
							 "says %u payload bytes)",
							 size, h.payload_len);
	*out = h;
	return Status::Ok();
}

/* Seals pt under key with a fresh random nonce. */
Status
SealEnvelope(const EnvelopeHeader &h, const uint8_t key[kKeyBytes], const uint8_t *pt, uint8_t *out)
{
	VV_RETURN_IF_ERROR(ValidateHeader(h));
	EncodeHeader(h, out);
	uint8_t *nonce = out + kEnvelopeHeaderBytes;
	VV_RETURN_IF_ERROR(RandomBytes(nonce, kNonceBytes));
	uint8_t *ct = nonce + kNonceBytes;
	return AeadSeal(key, nonce, out, kEnvelopeHeaderBytes, pt, h.payload_len, ct,
					ct + h.payload_len);
}

/* Validates, authenticates and decrypts an envelope. */
Status
OpenEnvelope(const uint8_t *data, size_t size, const uint8_t key[kKeyBytes], uint8_t *pt)
{
	EnvelopeHeader h;
	VV_RETURN_IF_ERROR(DecodeEnvelopeHeader(data, size, &h));
	const uint8_t *nonce = data + kEnvelopeHeaderBytes;
	const uint8_t *ct = nonce + kNonceBytes;
	Status s =
		AeadOpen(key, nonce, data, kEnvelopeHeaderBytes, ct, h.payload_len, ct + h.payload_len, pt);
	if (!s.ok() && s.code() == Code::kCorrupt)
		return Status::Error(Code::kCorrupt,
							 "encrypted value failed authentication: it was modified, or was "
							 "sealed with a different key");
	return s;
}

} // namespace vector_vault
