# Everything a fresh machine needs, idempotently: `make demo`, `make test`.
# Stamps in the venv record finished steps; a step re-runs only when its inputs change.
# Dependencies come from requirements.lock only (pinned, sha256-checked); requirements.in holds
# the loose requirements the lock is made from (`make lock`, docs/dependencies.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= $(CURDIR)/.venv
BUILD ?= $(CURDIR)/build
PY := $(VENV)/bin/python
ROS_ENV := AMENT_PREFIX_PATH=$(VENV) CMAKE_PREFIX_PATH=$(VENV) PATH=$(VENV)/bin:$$PATH
MSGS := $(wildcard gaze_msgs/msg/*.msg) gaze_msgs/CMakeLists.txt gaze_msgs/package.xml
MTCNN_WEIGHTS := weights/mtcnn/pnet.pt weights/mtcnn/rnet.pt weights/mtcnn/onet.pt
MEDIAPIPE_WEIGHTS := weights/mediapipe/face_landmark.tflite weights/mediapipe/iris_landmark.tflite
PYTEST_ARGS ?=
# What step 1 installs: the lock, every distribution pinned with its hashes. `make test-latest`
# sets DEPS to the loose requirements at their newest releases instead (a venv of its own).
DEPS_FILE ?= requirements.lock
DEPS ?= --require-hashes -r requirements.lock
LOCK_VENV := $(CURDIR)/.venv-lock
LATEST_VENV := $(CURDIR)/.venv-latest

.PHONY: setup demo test test-latest lock weights ros-tools clean distclean

setup: $(VENV)/.stamp-deps $(VENV)/.stamp-msgs $(VENV)/.stamp-pkg $(MTCNN_WEIGHTS) $(MEDIAPIPE_WEIGHTS)

demo: setup
	$(VENV)/bin/gaze-perception demo

test: setup ros-tools
	$(VENV)/bin/pytest $(PYTEST_ARGS)

weights: $(MTCNN_WEIGHTS) $(MEDIAPIPE_WEIGHTS)

# 1. venv + wheels; then point the ROS wheels' CMake files at this venv (DESIGN.md 6, the quirk).
#    The lock pins pip too: the first install brings the tested pip, which then checks the rest.
$(VENV)/.stamp-deps: $(DEPS_FILE) tools/fix_ros_cmake_paths.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(DEPS)
	$(PY) tools/fix_ros_cmake_paths.py $(VENV)
	touch $@

# 2. gaze_msgs built by colcon and installed into the venv prefix (an ament prefix: share/, lib/).
$(VENV)/.stamp-msgs: $(VENV)/.stamp-deps $(MSGS)
	cd $(CURDIR) && $(ROS_ENV) $(VENV)/bin/colcon --log-base $(BUILD)/log build --merge-install \
	  --install-base $(VENV) --build-base $(BUILD) --base-paths gaze_msgs \
	  --cmake-args -DPython3_EXECUTABLE=$(PY) -DBUILD_TESTING=OFF
	touch $@

# 3. this package, editable (entry points = backend plugins and the gaze-perception command),
#    and in the ament index of the venv prefix as colcon --symlink-install lays it out (launch/,
#    config/, lib/gaze_perception/<node>), so `ros2 launch gaze_perception ...` finds it.
$(VENV)/.stamp-pkg: $(VENV)/.stamp-deps setup.py setup.cfg tools/ros_tools.py
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) tools/ros_tools.py ament-develop
	touch $@

# 4. MTCNN weights from the facenet-pytorch wheel on PyPI, sha256-checked against the manifest.
$(MTCNN_WEIGHTS) &: $(VENV)/.stamp-pkg weights/manifest.yaml
	$(VENV)/bin/gaze-perception weights fetch mtcnn_pnet mtcnn_rnet mtcnn_onet
	touch $(MTCNN_WEIGHTS)

# 5. MediaPipe Face Mesh + Iris TFLite files from the official mediapipe wheel on PyPI (never
#    imported: the files are taken out of the wheel), sha256-checked against the manifest.
$(MEDIAPIPE_WEIGHTS) &: $(VENV)/.stamp-pkg weights/manifest.yaml
	$(VENV)/bin/gaze-perception weights fetch mediapipe_face_mesh mediapipe_iris
	touch $(MEDIAPIPE_WEIGHTS)

# 6. test-time: the real `ros2` command line and launch_ros (../shared/ros_python, pip) and the
#    interface packages composition_interfaces, hri_msgs, tf2_msgs (../shared/ros_interfaces,
#    colcon, a few minutes once), each only where no ROS install provides it. Without ../shared
#    nothing is installed and the tests that use these tools skip with the reason.
SHARED ?= $(CURDIR)/../shared
ros-tools: $(VENV)/.stamp-ros-tools
$(VENV)/.stamp-ros-tools: $(VENV)/.stamp-msgs $(VENV)/.stamp-pkg tools/ros_tools.py
	$(PY) tools/ros_tools.py install --shared $(SHARED) --build $(BUILD)
	if [ -d $(SHARED)/ros_python ]; then touch $@; fi

# 7. The lock, made anew from requirements.in by pip-tools (itself pinned in
#    tools/lock-tools.txt) in a venv of its own, with pip's own resolver and configuration (on a
#    fresh machine: the package index only), for CPython 3.11 on Linux x86_64.
#    Existing pins stay unless LOCK_ARGS moves them: LOCK_ARGS="--upgrade-package numpy" for one,
#    LOCK_ARGS=--upgrade for all.
LOCK_ARGS ?=
lock: $(LOCK_VENV)/.stamp
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-find-links --no-emit-index-url $(LOCK_ARGS) --output-file requirements.lock \
	  requirements.in
	@echo "requirements.lock written; try it with 'make test' (and 'make test-latest' for what is newer)"
$(LOCK_VENV)/.stamp: tools/lock-tools.txt
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --require-hashes -r tools/lock-tools.txt
	touch $@

# 8. The next breaking release, caught before users meet it: the whole suite in a separate venv
#    (.venv-latest, build-latest/) from the loose requirements at their newest releases. The lock
#    is not touched; the lock-equality test there lists what differs from the lock and is left
#    out of the verdict.
test-latest:
	$(MAKE) test VENV=$(LATEST_VENV) BUILD=$(CURDIR)/build-latest DEPS_FILE=requirements.in \
	  DEPS="--upgrade --upgrade-strategy eager -r requirements.in" \
	  PYTEST_ARGS="$(PYTEST_ARGS) --lock-drift=report"

clean:
	rm -rf build build-latest log demo_out .pytest_cache

distclean: clean
	rm -rf $(VENV) $(LATEST_VENV) $(LOCK_VENV) weights/mtcnn weights/mediapipe
