/* index_record.cpp — sealing and opening vault_hnsw records (see index_record.h). */
#include "core/index_record.h"

#include "core/envelope.h"
#include "core/half.h"
#include "core/secure.h"

#include <cstring>

namespace vector_vault
{

namespace
{

constexpr size_t kVectorAadBytes = 24;

/* The associated data of a vector record. */
void
VectorAad(uint32_t id, uint64_t vault_id, uint32_t key_version, uint32_t dims, ElementWidth width,
		  uint8_t aad[kVectorAadBytes])
{
	memcpy(aad, width == ElementWidth::kHalf ? "VVEH" : "VVEC", 4);
	PutU32(aad + 4, id);
	PutU64(aad + 8, vault_id);
	PutU32(aad + 16, key_version);
	PutU32(aad + 20, dims);
}

} // namespace

/* Bytes of the lists. */
size_t
ElementLinksBytes(int m, int level)
{
	return sizeof(uint32_t) *
		   ((1 + 2 * static_cast<size_t>(m)) + static_cast<size_t>(level) * (1 + m));
}

/* Bytes of a record. */
size_t
ElementRecordSize(int m, int level)
{
	return kElementHeaderBytes + kNonceBytes + ElementLinksBytes(m, level) + kTagBytes;
}

/* Validates size and level, reads the header. */
Status
PeekElementRecord(const uint8_t *rec, size_t size, int m, ElementRecordInfo *out)
{
	if (m < 2 || m > kMaxElementM)
		return Status::Error(Code::kCorrupt, "index parameter m %d is out of range", m);
	if (size < kElementHeaderBytes)
		return Status::Error(Code::kCorrupt, "index element record is truncated (%zu bytes)", size);
	out->element_id = GetU32(rec);
	out->level = rec[4];
	out->flags = rec[5];
	out->vault_id = GetU64(rec + 16);
	out->key_version = GetU32(rec + 24);
	out->vec_block = GetU32(rec + 28);
	out->vec_offset = GetU32(rec + 32);
	if (out->level > kMaxElementLevel)
		return Status::Error(Code::kCorrupt, "index element %u has level %u", out->element_id,
							 out->level);
	if (size != ElementRecordSize(m, out->level))
		return Status::Error(Code::kCorrupt, "index element %u has %zu bytes, expected %zu",
							 out->element_id, size, ElementRecordSize(m, out->level));
	if ((out->flags & ~1u) != 0)
		return Status::Error(Code::kCorrupt, "index element %u has unknown flags 0x%02x",
							 out->element_id, out->flags);
	if (out->vault_id == 0 || out->key_version == 0)
		return Status::Error(Code::kCorrupt, "index element %u names no vault or key version",
							 out->element_id);
	return Status::Ok();
}

/* Authenticates and decrypts the lists. */
Status
OpenElementRecord(const uint8_t *rec, size_t size, int m, const uint8_t key[kKeyBytes],
				  uint32_t *links)
{
	ElementRecordInfo info;
	VV_RETURN_IF_ERROR(PeekElementRecord(rec, size, m, &info));
	size_t n = ElementLinksBytes(m, info.level);
	const uint8_t *nonce = rec + kElementHeaderBytes;
	Status s = AeadOpen(key, nonce, rec, kElementHeaderBytes, nonce + kNonceBytes, n,
						nonce + kNonceBytes + n, reinterpret_cast<uint8_t *>(links));
	if (!s.ok())
		return Status::Error(Code::kCorrupt, "index element %u failed authentication",
							 info.element_id);
	bool ok = links[0] <= static_cast<uint32_t>(2 * m);
	for (int l = 1; ok && l <= info.level; l++)
		ok = links[(1 + 2 * m) + (l - 1) * (1 + m)] <= static_cast<uint32_t>(m);
	if (!ok)
	{
		SecureZero(links, n);
		return Status::Error(Code::kCorrupt, "index element %u has too many neighbours",
							 info.element_id);
	}
	return Status::Ok();
}

/* Seals lists behind an existing header. */
Status
SealElementRecord(uint8_t *rec, int m, int level, const uint8_t key[kKeyBytes],
				  const uint32_t *links)
{
	size_t n = ElementLinksBytes(m, level);
	uint8_t *nonce = rec + kElementHeaderBytes;
	VV_RETURN_IF_ERROR(RandomBytes(nonce, kNonceBytes));
	return AeadSeal(key, nonce, rec, kElementHeaderBytes, reinterpret_cast<const uint8_t *>(links),
					n, nonce + kNonceBytes, nonce + kNonceBytes + n);
}

/* Seals a vector record. */
Status
SealVectorRecord(uint32_t element_id, uint64_t vault_id, uint32_t key_version, const float *v,
				 uint32_t dims, ElementWidth width, const uint8_t key[kKeyBytes], uint8_t *out)
{
	uint8_t aad[kVectorAadBytes];
	VectorAad(element_id, vault_id, key_version, dims, width, aad);
	size_t n = static_cast<size_t>(dims) * static_cast<size_t>(width);
	VV_RETURN_IF_ERROR(RandomBytes(out, kNonceBytes));
	if (width == ElementWidth::kFloat32)
		return AeadSeal(key, out, aad, sizeof(aad), reinterpret_cast<const uint8_t *>(v), n,
						out + kNonceBytes, out + kNonceBytes + n);
	/* The halves are plaintext: narrowed into the output's ciphertext area and sealed in place
	 * (AeadSeal allows in == out), so no other buffer ever holds them. */
	uint16_t *halves = reinterpret_cast<uint16_t *>(out + kNonceBytes);
	Status s = FloatsToHalves(v, dims, halves);
	if (!s.ok())
	{
		SecureZero(halves, n);
		return s;
	}
	return AeadSeal(key, out, aad, sizeof(aad), reinterpret_cast<const uint8_t *>(halves), n,
					out + kNonceBytes, out + kNonceBytes + n);
}

/* Opens a vector record. */
Status
OpenVectorRecord(const uint8_t *rec, size_t size, uint32_t element_id, uint64_t vault_id,
				 uint32_t key_version, uint32_t dims, ElementWidth width,
				 const uint8_t key[kKeyBytes], float *out)
{
	if (size != VectorRecordSize(dims, width))
		return Status::Error(Code::kCorrupt, "index vector record has %zu bytes, expected %zu",
							 size, VectorRecordSize(dims, width));
	uint8_t aad[kVectorAadBytes];
	VectorAad(element_id, vault_id, key_version, dims, width, aad);
	size_t n = static_cast<size_t>(dims) * static_cast<size_t>(width);
	/* Halves are decrypted into the upper half of out and widened forwards in place: float i
	 * (bytes 4i..4i+3) is written after half i is read and never reaches half i+1 (byte
	 * 2 dims + 2i + 2), since i < dims. */
	uint8_t *dst = reinterpret_cast<uint8_t *>(out);
	if (width == ElementWidth::kHalf)
		dst += sizeof(uint16_t) * static_cast<size_t>(dims);
	Status s =
		AeadOpen(key, rec, aad, sizeof(aad), rec + kNonceBytes, n, rec + kNonceBytes + n, dst);
	if (!s.ok())
	{
		SecureZero(dst, n); /* unauthenticated plaintext */
		return Status::Error(Code::kCorrupt, "index vector of element %u failed authentication",
							 element_id);
	}
	if (width == ElementWidth::kHalf)
	{
		const uint16_t *h = reinterpret_cast<const uint16_t *>(dst);
		for (uint32_t i = 0; i < dims; i++)
			out[i] = HalfToFloat(h[i]);
	}
	return Status::Ok();
}

} // namespace vector_vault
