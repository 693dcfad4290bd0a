/*
 * compat.h — every Postgres-version difference lives here.
 *
 * vector_vault targets PostgreSQL 15. The items below are the places 16 and 17 are known to
 * differ; porting means filling in the #else branches, not hunting through the tree.
 *   - shmem_request_hook exists from 15 on (RequestAddinShmemSpace must be called from it).
 *   - 16 renamed some GenericXLog/relation-size helpers; 17 changed the index build progress
 *     callback signature (IndexBuildCallback is unchanged) and added amsummarizing (16).
 *   - 16 moved PGDLLEXPORT visibility into c.h; pg.h defines it first either way.
 */
#pragma once

#if PG_VERSION_NUM < 150000
#error "vector_vault needs PostgreSQL 15 or later"
#endif

#if PG_VERSION_NUM >= 160000
#define VV_AM_HAS_SUMMARIZING 1
#else
#define VV_AM_HAS_SUMMARIZING 0
#endif

/* Tree walkers: 15 declares the callback as an old-style bool (*)() (an empty parameter list in
 * C++); 16 has typed callbacks (tree_walker_callback). Pass walkers through VV_WALKER. */
#if PG_VERSION_NUM >= 160000
#define VV_WALKER(fn) (fn)
#else
#define VV_WALKER(fn) reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(fn))
#endif
