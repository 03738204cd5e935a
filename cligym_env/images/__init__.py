"""Images: the locally bootstrapped base images and content-addressed task images."""

from cligym_env.images.bootstrap import BASE_IMAGE, PYTHON_IMAGE, bootstrap
from cligym_env.images.build import ImageBuildError, build_environment, build_image, environment_tag

__all__ = ["BASE_IMAGE", "PYTHON_IMAGE", "ImageBuildError", "bootstrap", "build_environment", "build_image",
           "environment_tag"]
