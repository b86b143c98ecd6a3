#!/usr/bin/env python3
"""moto's server with one fix, installed by scripts/setup as the virtualenv's `moto_server`.

moto 5.2.5's CreateLaunchTemplateVersion keeps the version's UserData as a plain string,
where CreateLaunchTemplate wraps it (`parse_user_data`); launching an instance from such a
version (an Auto Scaling group after a launch template change) then fails with an
AssertionError in `LaunchTemplateVersion.user_data`, answered as HTTP 500. This wraps the
value on the way in, as CreateLaunchTemplate does; nothing else changes.
"""
import sys

from moto.core.types import Base64EncodedString
from moto.ec2.models import launch_templates
from moto.ec2.utils import parse_user_data
from moto.server import main

_create_version = launch_templates.LaunchTemplate.create_version


def _create_version_with_wrapped_user_data(self, data, description):
    user_data = data.get("UserData")
    if user_data is not None and not isinstance(user_data, Base64EncodedString):
        data["UserData"] = parse_user_data(user_data)
    return _create_version(self, data, description)


launch_templates.LaunchTemplate.create_version = _create_version_with_wrapped_user_data

if __name__ == "__main__":
    sys.exit(main())
