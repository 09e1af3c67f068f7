"""Attention analytics without ROS: where each tracked person looked (regions of interest,
other people), for how long, and how long their eyes were closed. The `attention` node and
`gaze-perception report` are thin adapters over it."""
