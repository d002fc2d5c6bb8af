<?php
/**
 * Plugin Name:       WPForms Emulator (FormRelay test tool)
 * Description:       TEST TOOL, NOT WPFORMS. Reproduces WPForms Pro 1.9.1.4 (and Lite 1.8.9.6) exactly where FormRelay touches it: the entry tables, form posts, front-end submissions with their hooks in WPForms' order, uploaded files and stored entries. For FormRelay's tests and demo only; never install it on a real site.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.0
 * Author:            FormRelay
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 *
 * What it does and where it deliberately differs from WPForms: see README.md
 * beside this file. The Python driver is devstack/wpforms.py.
 *
 * @package WPFormsEmulator
 */

defined( 'ABSPATH' ) || exit;

if ( defined( 'WPFORMS_EMULATOR_VERSION' ) ) {
	return;
}

define( 'WPFORMS_EMULATOR_VERSION', '0.1.0' );
define( 'WPFORMS_EMULATOR_FILE', __FILE__ );
define( 'WPFORMS_EMULATOR_PRO_VERSION', '1.9.1.4' );
define( 'WPFORMS_EMULATOR_LITE_VERSION', '1.8.9.6' );

require_once __DIR__ . '/includes/class-wpforms-emulator.php';
require_once __DIR__ . '/includes/class-wpforms-emulator-schema.php';
require_once __DIR__ . '/includes/class-wpforms-emulator-forms.php';
require_once __DIR__ . '/includes/class-wpforms-emulator-fields.php';
require_once __DIR__ . '/includes/class-wpforms-emulator-uploads.php';
require_once __DIR__ . '/includes/class-wpforms-emulator-entries.php';
require_once __DIR__ . '/includes/class-wpforms-emulator-process.php';
require_once __DIR__ . '/includes/functions.php';

register_activation_hook( __FILE__, array( 'WPForms_Emulator_Schema', 'activate' ) );

// The real WPForms (Lite or Pro) wins: the emulator stays idle next to it.
if ( ! WPForms_Emulator::real_wpforms_present() ) {
	if ( ! defined( 'WPFORMS_VERSION' ) ) {
		define( 'WPFORMS_VERSION', WPForms_Emulator::is_pro() ? WPFORMS_EMULATOR_PRO_VERSION : WPFORMS_EMULATOR_LITE_VERSION );
	}
	WPForms_Emulator::instance()->hooks();
}
