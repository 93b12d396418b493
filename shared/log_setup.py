"""What the app logs at the host's level: its own lines, without Azure SDK HTTP traces or DICOM UIDs unless asked."""
from __future__ import annotations

import logging
import os
from typing import Mapping

from shared.errors import ServiceConfigurationError
from shared.settings import detailed_logs_requested

SDK_LOGGER = "azure"  # azure-core logs every request at INFO (azure.core.pipeline.policies.http_logging_policy)
DETAIL_LOGGER = "dicom_export.detail"
PYDICOM_LOGGER = "pydicom"  # its warnings about an instance quote the instance's values

# Lines that name DICOM instances (UIDs) go here: they reach the host only with EXPORT_DETAILED_LOGS=true.
detail = logging.getLogger(DETAIL_LOGGER)


def configure_logging(env: Mapping[str, str] = os.environ) -> bool:
    """Set the Azure SDK's and the detail loggers' levels from EXPORT_DETAILED_LOGS; return whether detail is on.

    Off (the default): both log WARNING and above only, and pydicom (which quotes values) ERROR and above. On: both
    log INFO, so every SDK request and every instance is logged, and pydicom WARNING. A malformed value is logged as an error and leaves detail off (every export then answers 500 naming
    the setting).
    """
    try:
        detailed = detailed_logs_requested(env)
    except ServiceConfigurationError as error:
        logging.error("Detailed logs stay off: %s", error)
        detailed = False
    level = logging.INFO if detailed else logging.WARNING
    logging.getLogger(SDK_LOGGER).setLevel(level)
    detail.setLevel(level)
    logging.getLogger(PYDICOM_LOGGER).setLevel(logging.WARNING if detailed else logging.ERROR)
    return detailed
