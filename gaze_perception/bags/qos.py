"""QoS the way rosbag2 treats it: the recorder adapts its subscription to the publishers it finds
and stores what they offered; the player offers that again, so a best-effort camera or a latched
(transient-local) topic behaves on replay as it did live."""
from __future__ import annotations

from typing import Sequence

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)

#: Messages the recorder may queue per topic while it writes (a burst at camera rate).
RECORD_DEPTH = 100
#: Messages the player keeps per topic for a reliable subscriber that has not acknowledged them
#: yet (a bag replays bursts faster than a slow subscriber takes them).
PLAY_DEPTH = 100


def adapted_qos(offered: Sequence[QoSProfile], depth: int) -> QoSProfile:
    """A profile compatible with every publisher: reliable or transient-local only if all of
    them offer it (a reliable subscription would not connect to a best-effort publisher)."""
    reliable = all(p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    latched = bool(offered) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL
                                    for p in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def to_bag(profile: QoSProfile) -> Qos:
    """An rclpy profile as rosbags stores it in a bag's topic metadata."""
    return Qos(history=QosHistory[profile.history.name], depth=profile.depth,
               reliability=QosReliability[profile.reliability.name],
               durability=QosDurability[profile.durability.name],
               deadline=_time(profile.deadline), lifespan=_time(profile.lifespan),
               liveliness=QosLiveliness[profile.liveliness.name],
               liveliness_lease_duration=_time(profile.liveliness_lease_duration),
               avoid_ros_namespace_conventions=profile.avoid_ros_namespace_conventions)


def playback_qos(recorded: Sequence[Qos]) -> QoSProfile:
    """The profile to publish a recorded topic with (reliable, volatile when none is stored)."""
    offered = [QoSProfile(depth=max(q.depth, 1),
                          reliability=ReliabilityPolicy[q.reliability.name],
                          durability=DurabilityPolicy[q.durability.name])
               for q in recorded]
    depth = max([PLAY_DEPTH] + [p.depth for p in offered])
    return adapted_qos(offered, depth)


def _time(duration: Duration) -> QosTime:
    sec, nsec = divmod(duration.nanoseconds, 1_000_000_000)
    return QosTime(sec, nsec)
