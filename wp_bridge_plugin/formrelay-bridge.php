<?php
/**
 * Plugin Name:       FormRelay Bridge
 * Description:       Queues WPForms submissions in the WordPress database for the FormRelay sidecar, which delivers them to a partner API.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.0
 * Author:            FormRelay
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       formrelay-bridge
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

define( 'FORMRELAY_BRIDGE_VERSION', '0.1.0' );
define( 'FORMRELAY_BRIDGE_FILE', __FILE__ );
define( 'FORMRELAY_BRIDGE_PATH', plugin_dir_path( __FILE__ ) );

require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-schema.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-settings.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-settings-sanitizer.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-settings-publisher.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-seal.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-capture.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-signing.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-notify.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-sidecar-client.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-rest-params.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-relay.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-rest.php';
require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-doctor.php';
require_once FORMRELAY_BRIDGE_PATH . 'admin/class-formrelay-unreachable.php';
require_once FORMRELAY_BRIDGE_PATH . 'admin/class-formrelay-fragment.php';
require_once FORMRELAY_BRIDGE_PATH . 'admin/class-formrelay-dashboard.php';

// The tables: created on activation, upgraded after a plugin update.
register_activation_hook( __FILE__, array( 'FormRelay_Schema', 'activate' ) );
register_activation_hook( __FILE__, array( 'FormRelay_Settings', 'activate' ) );
register_activation_hook( __FILE__, array( 'FormRelay_Settings_Publisher', 'activate' ) );
register_deactivation_hook( __FILE__, array( 'FormRelay_Settings_Publisher', 'deactivate' ) );
add_action( 'admin_init', array( 'FormRelay_Schema', 'maybe_upgrade' ) );
add_action( 'admin_notices', array( 'FormRelay_Schema', 'render_notices' ) );

// Settings: registered on every request, so every update is sanitized; every change is
// published for the sidecar (formrelay_meta row delivery_settings); a secret kept in the
// autoloaded settings by an older version moves to its own option.
add_action( 'init', array( 'FormRelay_Settings', 'register' ) );
add_action( 'admin_init', array( 'FormRelay_Settings', 'maybe_move_secret' ) );
FormRelay_Settings_Publisher::register();

// Capture: one job row per WPForms submission; the notify follows at shutdown.
FormRelay_Capture::register();

// Dashboard: the formrelay_manage capability and the REST bridge to the sidecar (wp-admin and REST requests).
FormRelay_Dashboard::register();
FormRelay_REST::register();
FormRelay_Doctor::register(); // `formrelay doctor`'s signed round trip.

if ( is_admin() ) {
	require_once FORMRELAY_BRIDGE_PATH . 'admin/class-formrelay-admin.php';
	require_once FORMRELAY_BRIDGE_PATH . 'admin/class-formrelay-admin-seal.php';
	FormRelay_Admin::register();
	FormRelay_Dashboard::register_admin();
	// Notices on every wp-admin screen: paused, failed since the user looked, sidecar down, incidents.
	require_once FORMRELAY_BRIDGE_PATH . 'admin/class-formrelay-notice-state.php';
	require_once FORMRELAY_BRIDGE_PATH . 'admin/class-formrelay-notice-text.php';
	require_once FORMRELAY_BRIDGE_PATH . 'admin/class-formrelay-notice-dismiss.php';
	require_once FORMRELAY_BRIDGE_PATH . 'admin/class-formrelay-notices.php';
	FormRelay_Notices::register();
}

// WP-CLI: wp formrelay status|retry <id>|resume, through the dashboard's signed bridge.
if ( defined( 'WP_CLI' ) && WP_CLI ) {
	require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-cli-status.php';
	require_once FORMRELAY_BRIDGE_PATH . 'includes/class-formrelay-cli.php';
	WP_CLI::add_command( 'formrelay', 'FormRelay_CLI' );
}
