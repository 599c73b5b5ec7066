"""Least-cost path trees over links (Dijkstra), compiled: the free-flow routes of every demand.

:meth:`trafficsim.network.Network.shortest_paths_from` and the route resolution of
:class:`trafficsim.demand.Demand` build the turn arrays once (:class:`trafficsim.network.PathFinder`)
and call :func:`link_tree` per origin. Links are the vertices of the search, so turn bans and the
U-turn rule hold; ties are broken by the least cost, then the lowest link index (the order the
links were added), as the heap of ``(cost, index)`` pairs pops them.
"""

import heapq

import numpy as np

from ._jit import jit

__all__ = ["link_tree"]


@jit
def link_tree(first, cost, turn_off, turn_to, link_to, n_nodes):
    """Dijkstra from the links ``first`` (those leaving the origin) over the turn graph.

    Parameters
    ----------
    first : int64 array
        Links leaving the origin node.
    cost : float64 array (L,)
        Cost of each link (the whole link is paid on entering it).
    turn_off, turn_to : int64 arrays
        Allowed turns: from link ``i`` into ``turn_to[turn_off[i]:turn_off[i + 1]]``.
    link_to : int64 array (L,)
        Node index at each link's end.
    n_nodes : int
        Number of nodes.

    Returns
    -------
    prev : int64 array (L,)
        The link before each link on its least-cost path; -1 for a link leaving the origin, -2
        for a link not reached.
    last : int64 array (n_nodes,)
        The last link of the least-cost path into each node (the first such link settled), -1
        for a node not reached.
    """
    L = cost.shape[0]
    best = np.full(L, np.inf)
    prev = np.full(L, -2, np.int64)
    done = np.zeros(L, np.bool_)
    last = np.full(n_nodes, -1, np.int64)
    heap = [(0.0, np.int64(0))]
    heap.pop()
    for i in first:
        best[i] = cost[i]
        prev[i] = -1
        heapq.heappush(heap, (cost[i], i))
    while len(heap) > 0:
        c, i = heapq.heappop(heap)
        if done[i]:
            continue
        done[i] = True
        if last[link_to[i]] < 0:
            last[link_to[i]] = i
        for k in range(turn_off[i], turn_off[i + 1]):
            j = turn_to[k]
            if done[j]:
                continue
            cn = c + cost[j]
            if cn < best[j]:
                best[j] = cn
                prev[j] = i
                heapq.heappush(heap, (cn, j))
    return prev, last
