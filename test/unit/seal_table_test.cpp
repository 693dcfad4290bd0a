/* seal_table_test.cpp — slot placement of the nonce budget (issue 14: a full table left every
 * later key version uncounted). */
#include "core/seal_table.h"

#include <gtest/gtest.h>
#include <set>
#include <utility>
#include <vector>

using namespace vector_vault;

namespace
{

/* Places (vault, version) as the bridge does; returns its slot. */
size_t
Place(std::vector<SealSlotKey> &t, uint64_t vault, uint32_t version, uint64_t now)
{
	long found = SealTableFind(t.data(), t.size(), vault, version);
	if (found >= 0)
	{
		t[found].last_use = now;
		return static_cast<size_t>(found);
	}
	bool evict = false;
	size_t at = SealTableVictim(t.data(), t.size(), vault, version, &evict);
	EXPECT_EQ(evict, !SealSlotFree(t[at]));
	t[at] = SealSlotKey{vault, version, 0, now};
	return at;
}

} // namespace

TEST(SealTable, AnyNumberOfVersionsGetsASlot)
{
	std::vector<SealSlotKey> t(64, SealSlotKey{0, 0, 0, 0});
	/* Far more versions than slots (the 1,030 against 1,024): every one is placed and
	 * then found, and no key is ever in two slots. */
	for (uint32_t v = 1; v <= 5000; v++)
	{
		size_t at = Place(t, 42, v, v);
		EXPECT_EQ(SealTableFind(t.data(), t.size(), 42, v), static_cast<long>(at));
	}
	std::set<std::pair<uint64_t, uint32_t>> seen;
	for (const SealSlotKey &k : t)
	{
		if (!SealSlotFree(k))
		{
			EXPECT_TRUE(seen.insert({k.vault_id, k.key_version}).second);
		}
	}
	/* Another vault still gets a slot. */
	size_t at = Place(t, 7, 1, 6000);
	EXPECT_EQ(SealTableFind(t.data(), t.size(), 7, 1), static_cast<long>(at));
}

TEST(SealTable, EvictsTheLeastRecentlyUsedOfTheWindow)
{
	std::vector<SealSlotKey> t(kSealWays, SealSlotKey{0, 0, 0, 0});
	/* A table of one window: fill it, keep one key hot, and the coldest goes first. */
	for (uint32_t v = 1; v <= kSealWays; v++)
		Place(t, 9, v, 100 + v);
	Place(t, 9, 1, 1000); /* version 1 used again: most recent */
	bool evict = false;
	size_t victim = SealTableVictim(t.data(), t.size(), 9, 99, &evict);
	EXPECT_TRUE(evict);
	EXPECT_EQ(t[victim].key_version, 2u);
	/* A freed slot is taken before anything is evicted. */
	t[5] = SealSlotKey{0, 0, 0, 0};
	victim = SealTableVictim(t.data(), t.size(), 9, 99, &evict);
	EXPECT_FALSE(evict);
	EXPECT_EQ(victim, 5u);
}

TEST(SealTable, LookupScansOnlyTheWindow)
{
	std::vector<SealSlotKey> t(1024, SealSlotKey{0, 0, 0, 0});
	size_t home = SealTableHome(5, 3, t.size());
	EXPECT_LT(home, t.size());
	EXPECT_EQ(SealTableFind(t.data(), t.size(), 5, 3), -1);
	t[(home + kSealWays - 1) % t.size()] = SealSlotKey{5, 3, 0, 1};
	EXPECT_EQ(SealTableFind(t.data(), t.size(), 5, 3),
			  static_cast<long>((home + kSealWays - 1) % t.size()));
}
