/*
 * hnsw_graph.h — the HNSW algorithms vector_vault runs itself: search, neighbour selection,
 * insert planning and repair after deletes. Pure C++, templated over a graph accessor, so the
 * same code runs on the decrypted shared-memory cache (index scans, inserts, vacuum) and on
 * plain arrays in unit tests.
 *
 * Vocabulary follows hnswlib (Malkov & Yashunin): M is the neighbour budget on upper layers, the
 * bottom layer keeps up to 2M (maxM0); ef is the size of the dynamic candidate list;
 * searchBaseLayer is the best-first search within one layer; the neighbour-selection heuristic
 * keeps a candidate only if it is closer to the new element than to every neighbour already
 * kept, which preserves long-range links and connectivity.
 *
 * A graph accessor G provides:
 *   float Dist(const GraphParams &, const float *q, ElementId) const;  query-to-element distance
 *   float PairDist(const GraphParams &, ElementId, ElementId) const;   element-to-element distance
 *   int Links(ElementId, int layer, ElementId *out) const;     copy of a neighbour list
 *   int Level(ElementId) const;                                top layer of the element
 *   bool Deleted(ElementId) const;                             never returned, still traversed
 *   uint32_t Capacity() const;                                 ids are < Capacity()
 *   void Prefetch(ElementId) const;                            hint: its vector is needed soon
 *   int InDegree(ElementId) const;                             layer-0 links pointing at it
 * Distances are smaller-is-closer. The algorithms never read a vector themselves, so an accessor
 * may keep vectors in any representation (float32, or int8 codes in the index cache, see
 * core/quantize.h); accessors over plain float arrays derive from FloatVectors, which computes
 * both distances with GraphParams::dist over their Vector().
 */
#pragma once
#include "core/pure.h"
#include "core/distance.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <queue>
#include <unordered_map>
#include <vector>

namespace vector_vault::hnsw
{

using ElementId = uint32_t;
constexpr ElementId kNoElement = 0xFFFFFFFFu;
constexpr int kMaxLevel = 16;
/* Largest supported M (neighbour budget); layer 0 keeps up to 2 * kMaxM. */
constexpr int kMaxM = 100;

/* A candidate: distance to the query and element. */
struct Candidate
{
	float dist;
	ElementId id;

	bool operator<(const Candidate &o) const
	{
		return dist < o.dist || (dist == o.dist && id < o.id);
	}

	bool operator>(const Candidate &o) const
	{
		return o < *this;
	}
};

/*
 * Visited marks with generation tags, so a search resets in O(1). The tag array is the caller's
 * (bridge code keeps it in palloc'd memory, so nothing here needs a destructor); Reset() must be
 * given a capacity the array covers.
 */
class VisitedSet
{
  public:
	VisitedSet() = default;
	VisitedSet(uint16_t *tags, size_t size) : tags_(tags), size_(size) {}

	/* Starts a new generation for ids below capacity (<= the array size). */
	void Reset(uint32_t capacity)
	{
		limit_ = capacity < size_ ? capacity : size_;
		if (++gen_ == 0)
		{
			std::fill(tags_, tags_ + size_, 0);
			gen_ = 1;
		}
	}

	/* Marks id; returns true if it was not yet visited in this generation. */
	bool Visit(ElementId id)
	{
		if (id >= limit_)
			return false;
		if (tags_[id] == gen_)
			return false;
		tags_[id] = gen_;
		return true;
	}

  private:
	uint16_t *tags_ = nullptr;
	size_t size_ = 0;
	size_t limit_ = 0;
	uint16_t gen_ = 0;
};

/* A VisitedSet that owns its tags (core-only code and tests). */
class OwnedVisitedSet
{
  public:
	explicit OwnedVisitedSet(size_t size) : tags_(size, 0), set_(tags_.data(), size) {}

	/* The set. */
	VisitedSet *get()
	{
		return &set_;
	}

  private:
	std::vector<uint16_t> tags_;
	VisitedSet set_;
};

/* Parameters of one graph. */
struct GraphParams
{
	int m = 16;               /* neighbours per upper layer */
	int ef_construction = 64; /* candidate list size while inserting */
	size_t dims = 0;
	DistanceKernel dist = nullptr;

	/* Neighbour capacity of a layer. */
	int MaxLinks(int layer) const
	{
		return layer == 0 ? 2 * m : m;
	}
};

/* Dist and PairDist for accessors whose Derived::Vector(id) returns float32 vectors. */
template <class Derived> struct FloatVectors
{
	/* Distance from q to an element. */
	float Dist(const GraphParams &p, const float *q, ElementId id) const
	{
		return p.dist(q, static_cast<const Derived *>(this)->Vector(id), p.dims);
	}

	/* Distance between two elements. */
	float PairDist(const GraphParams &p, ElementId a, ElementId b) const
	{
		const Derived *d = static_cast<const Derived *>(this);
		return p.dist(d->Vector(a), d->Vector(b), p.dims);
	}
};

/* Distance from q to an element. */
template <class G>
inline float
DistTo(const G &g, const GraphParams &p, const float *q, ElementId id)
{
	return g.Dist(p, q, id);
}

/* Greedy descent on one layer: moves to the closest neighbour until none is closer. */
template <class G>
Candidate
GreedyClosest(const G &g, const GraphParams &p, const float *q, Candidate cur, int layer)
{
	ElementId links[2 * kMaxM];
	bool changed = true;
	while (changed)
	{
		changed = false;
		int n = g.Links(cur.id, layer, links);
		for (int i = 0; i < n; i++)
		{
			float d = DistTo(g, p, q, links[i]);
			if (d < cur.dist)
			{
				cur = {d, links[i]};
				changed = true;
			}
		}
	}
	return cur;
}

/*
 * searchBaseLayer: best-first search of one layer from the entry candidates, keeping the ef
 * closest. Returns them sorted by distance (deleted elements are traversed and included; callers
 * filter). visited must be Reset() by the caller.
 */
template <class G>
std::vector<Candidate>
SearchLayer(const G &g, const GraphParams &p, const float *q, const std::vector<Candidate> &entry,
			int ef, int layer, VisitedSet *visited)
{
	std::vector<Candidate> top_store, frontier_store;
	top_store.reserve(ef + 1);
	frontier_store.reserve(4 * ef + 64);
	/* max-heap: worst of the kept on top; min-heap: closest unexpanded first */
	std::priority_queue<Candidate> top(std::less<Candidate>(), std::move(top_store));
	std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> frontier(
		std::greater<Candidate>(), std::move(frontier_store));
	for (const Candidate &c : entry)
	{
		if (!visited->Visit(c.id))
			continue;
		top.push(c);
		frontier.push(c);
	}
	while (static_cast<int>(top.size()) > ef)
		top.pop();
	ElementId links[2 * kMaxM];
	while (!frontier.empty())
	{
		Candidate c = frontier.top();
		if (static_cast<int>(top.size()) >= ef && c.dist > top.top().dist)
			break;
		frontier.pop();
		int n = g.Links(c.id, layer, links);
		/* Keep only unvisited neighbours, then prefetch one ahead: vectors are KBs apart, so
		 * the search is bound by memory latency, not arithmetic (as hnswlib does). */
		int k = 0;
		for (int i = 0; i < n; i++)
			if (visited->Visit(links[i]))
				links[k++] = links[i];
		if (k > 0)
			g.Prefetch(links[0]);
		for (int i = 0; i < k; i++)
		{
			ElementId e = links[i];
			if (i + 1 < k)
				g.Prefetch(links[i + 1]);
			float d = DistTo(g, p, q, e);
			if (static_cast<int>(top.size()) < ef || d < top.top().dist)
			{
				top.push({d, e});
				frontier.push({d, e});
				if (static_cast<int>(top.size()) > ef)
					top.pop();
			}
		}
	}
	std::vector<Candidate> out(top.size());
	for (size_t i = out.size(); i-- > 0;)
	{
		out[i] = top.top();
		top.pop();
	}
	return out;
}

/* Full search: greedy descent from the entry point to layer 0, then searchBaseLayer with ef. */
template <class G>
std::vector<Candidate>
Search(const G &g, const GraphParams &p, const float *q, ElementId entry, int entry_level, int ef,
	   VisitedSet *visited)
{
	if (entry == kNoElement)
		return {};
	Candidate cur{DistTo(g, p, q, entry), entry};
	for (int layer = entry_level; layer > 0; layer--)
		cur = GreedyClosest(g, p, q, cur, layer);
	visited->Reset(g.Capacity());
	return SearchLayer(g, p, q, {cur}, ef, 0, visited);
}

/*
 * The neighbour-selection heuristic (hnswlib getNeighborsByHeuristic2): walks candidates from
 * closest to farthest and keeps one only if it is closer to the base element than to every
 * neighbour kept so far. With keep_pruned (the paper's keepPrunedConnections), the list is then
 * topped up with the closest discarded candidates: for inner product, which is not a metric, the
 * plain heuristic prunes so hard that elements lose every inbound link. candidates must be sorted
 * ascending by distance to the base.
 */
template <class G>
std::vector<ElementId>
SelectNeighbors(const G &g, const GraphParams &p, const std::vector<Candidate> &candidates,
				int max_links, bool keep_pruned = true)
{
	std::vector<ElementId> kept;
	if (static_cast<int>(candidates.size()) <= max_links)
	{
		for (const Candidate &c : candidates)
			kept.push_back(c.id);
		return kept;
	}
	std::vector<ElementId> pruned;
	for (const Candidate &c : candidates)
	{
		if (static_cast<int>(kept.size()) >= max_links)
			break;
		bool good = true;
		for (ElementId k : kept)
		{
			if (g.PairDist(p, c.id, k) < c.dist)
			{
				good = false;
				break;
			}
		}
		if (good)
			kept.push_back(c.id);
		else if (keep_pruned)
			pruned.push_back(c.id);
	}
	for (size_t i = 0; i < pruned.size() && static_cast<int>(kept.size()) < max_links; i++)
		kept.push_back(pruned[i]);
	return kept;
}

/*
 * Shrinking a full layer-0 list drops links. A dropped link that was its target's last inbound
 * link would strand the target (frequent with inner product), so such a link is kept in place of
 * a kept link whose target has other inbound links (farthest first). old holds the list before
 * the change, fresh the heuristic's choice; `added` is the element being inserted. delta tracks
 * in-degree changes already planned in this insert (several neighbours may drop the same target).
 */
template <class G>
void
KeepOnlyLinks(const G &g, const ElementId *old, int n, ElementId added,
			  std::vector<ElementId> *fresh, std::unordered_map<ElementId, int> *delta)
{
	auto indegree = [&](ElementId e)
	{
		auto it = delta->find(e);
		return g.InDegree(e) + (it == delta->end() ? 0 : it->second);
	};
	for (int i = 0; i < n; i++)
	{
		ElementId w = old[i];
		if (std::find(fresh->begin(), fresh->end(), w) != fresh->end() || g.Deleted(w) ||
			indegree(w) > 1)
			continue;
		bool kept = false;
		for (size_t j = fresh->size(); j-- > 0 && !kept;)
		{
			ElementId k = (*fresh)[j];
			if (k == added)
				continue;
			bool was_linked = std::find(old, old + n, k) != old + n;
			if (indegree(k) >= (was_linked ? 2 : 1))
			{
				(*fresh)[j] = w;
				kept = true;
			}
		}
		/* Nothing else can go: give up the new link rather than strand w (the new element gets
		 * its inbound link elsewhere, see PlanInsert). */
		for (size_t j = 0; j < fresh->size() && !kept; j++)
			if ((*fresh)[j] == added)
			{
				(*fresh)[j] = w;
				kept = true;
			}
	}
	/* record what this list change does to in-degrees */
	for (int i = 0; i < n; i++)
		if (std::find(fresh->begin(), fresh->end(), old[i]) == fresh->end())
			(*delta)[old[i]]--;
	for (ElementId k : *fresh)
		if (std::find(old, old + n, k) == old + n)
			(*delta)[k]++;
}

/* A neighbour list to write back: element, layer and the new list. */
struct LinkUpdate
{
	ElementId id;
	int layer;
	std::vector<ElementId> links;
};

/* What inserting one element changes: its own lists, its neighbours' lists, the entry point. */
struct InsertPlan
{
	std::vector<std::vector<ElementId>> own; /* own[layer] for layer 0..level */
	std::vector<LinkUpdate> updates;         /* neighbours whose lists change */
	bool new_entry = false;                  /* the element becomes the entry point */
};

/*
 * Plans the insertion of element `id` (already readable through g, with its level; q is its
 * float32 vector) into the graph whose entry point is (entry, entry_level); entry == kNoElement
 * for an empty graph. Nothing is modified: the caller applies the plan to the cache and pages.
 */
template <class G>
InsertPlan
PlanInsert(const G &g, const GraphParams &p, ElementId id, const float *q, int level,
		   ElementId entry, int entry_level, VisitedSet *visited)
{
	InsertPlan plan;
	plan.own.resize(level + 1);
	if (entry == kNoElement)
	{
		plan.new_entry = true;
		return plan;
	}
	Candidate cur{DistTo(g, p, q, entry), entry};
	for (int layer = entry_level; layer > level; layer--)
		cur = GreedyClosest(g, p, q, cur, layer);
	std::vector<Candidate> eps{cur};
	ElementId links[2 * kMaxM];
	std::unordered_map<ElementId, int> delta; /* planned layer-0 in-degree changes */
	for (int layer = std::min(level, entry_level); layer >= 0; layer--)
	{
		visited->Reset(g.Capacity());
		visited->Visit(id);
		std::vector<Candidate> found = SearchLayer(g, p, q, eps, p.ef_construction, layer, visited);
		std::vector<Candidate> usable;
		for (const Candidate &c : found)
			if (!g.Deleted(c.id))
				usable.push_back(c);
		std::vector<ElementId> chosen = SelectNeighbors(g, p, usable, p.m);
		plan.own[layer] = chosen;
		int cap = p.MaxLinks(layer);
		for (ElementId nb : chosen)
		{
			int n = g.Links(nb, layer, links);
			LinkUpdate u{nb, layer, {}};
			if (n < cap)
			{
				u.links.assign(links, links + n);
				u.links.push_back(id);
			}
			else
			{
				std::vector<Candidate> cands;
				cands.push_back({g.PairDist(p, nb, id), id});
				for (int i = 0; i < n; i++)
					cands.push_back({g.PairDist(p, nb, links[i]), links[i]});
				std::sort(cands.begin(), cands.end());
				u.links = SelectNeighbors(g, p, cands, cap);
				if (layer == 0)
					KeepOnlyLinks(g, links, n, id, &u.links, &delta);
			}
			plan.updates.push_back(std::move(u));
		}
		/* Some neighbour must keep a link back on layer 0, or the element is unreachable: if the
		 * heuristic dropped it everywhere, add it where there is room, else in place of a link
		 * whose target has other inbound links, else in place of the nearest one's farthest. */
		if (layer == 0 && !chosen.empty())
		{
			bool linked = false;
			for (const LinkUpdate &u : plan.updates)
				if (u.layer == 0)
					linked |= std::find(u.links.begin(), u.links.end(), id) != u.links.end();
			for (int pass = 0; pass < 3 && !linked; pass++)
			{
				for (LinkUpdate &u : plan.updates)
				{
					if (u.layer != 0 || linked)
						continue;
					if (pass == 0 && static_cast<int>(u.links.size()) < cap)
					{
						u.links.push_back(id);
						linked = true;
					}
					for (size_t k = u.links.size(); pass == 1 && !linked && k-- > 0;)
					{
						auto it = delta.find(u.links[k]);
						if (g.InDegree(u.links[k]) + (it == delta.end() ? 0 : it->second) >= 2)
						{
							u.links[k] = id;
							linked = true;
						}
					}
					if (pass == 2 && !u.links.empty())
					{
						u.links.back() = id;
						linked = true;
					}
				}
			}
		}
		if (!found.empty())
			eps = found;
	}
	plan.new_entry = level > entry_level;
	return plan;
}

/*
 * Recomputes the neighbour list of `id` on `layer` after some of its neighbours were deleted:
 * candidates are its live neighbours plus the live neighbours of its deleted neighbours.
 */
template <class G>
std::vector<ElementId>
RepairLinks(const G &g, const GraphParams &p, ElementId id, int layer)
{
	ElementId links[2 * kMaxM];
	ElementId second[2 * kMaxM];
	int n = g.Links(id, layer, links);
	std::vector<Candidate> cands;
	auto add = [&](ElementId e)
	{
		if (e == id || g.Deleted(e) || g.Level(e) < layer)
			return;
		for (const Candidate &c : cands)
			if (c.id == e)
				return;
		cands.push_back({g.PairDist(p, id, e), e});
	};
	for (int i = 0; i < n; i++)
	{
		if (!g.Deleted(links[i]))
			add(links[i]);
		else
		{
			int n2 = g.Links(links[i], layer, second);
			for (int j = 0; j < n2; j++)
				add(second[j]);
		}
	}
	std::sort(cands.begin(), cands.end());
	std::vector<ElementId> fresh = SelectNeighbors(g, p, cands, p.MaxLinks(layer));
	if (layer == 0)
	{
		std::unordered_map<ElementId, int> delta;
		KeepOnlyLinks(g, links, n, kNoElement, &fresh, &delta);
	}
	return fresh;
}

/* Draws an HNSW level from u in (0,1]: floor(-ln(u) / ln(M)), capped at kMaxLevel. */
inline int
LevelFromUniform(double u, int m)
{
	if (u <= 0.0)
		u = 1e-300;
	double l = -std::log(u) / std::log(static_cast<double>(m));
	int level = static_cast<int>(l);
	return level > kMaxLevel ? kMaxLevel : (level < 0 ? 0 : level);
}

} // namespace vector_vault::hnsw
